"""Read routes the gateway forwards to the recommender, stylization and generation services, behind the same API keys.

Path parameters must be identifiers (the pattern every id in the events has; 422 otherwise) and are
percent-quoted into the internal URL, so no input can add a query, a fragment or a path segment to
it. What the service answers is passed on when it is a result (2xx) or a 404; any other answer, or
none, becomes a documented 502 or 503 with the gateway's error body.
"""

from __future__ import annotations

import math
from typing import Annotated, get_args
from urllib.parse import quote

import httpx
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from shared.events import Identifier
from services.gateway.auth import ApiKey
from services.gateway.schemas import read_responses

router = APIRouter(prefix="/v1", tags=["feed"])

ID_PATTERN = next(m.pattern for m in get_args(Identifier)[1].metadata if getattr(m, "pattern", None))


def path_id(what: str) -> object:
    return Path(min_length=1, max_length=128, pattern=ID_PATTERN, description=f"{what}: letters, digits and _.:@- "
                                                                              "(starting with a letter or digit)")


UserId = Annotated[str, path_id("a user id")]
VideoId = Annotated[str, path_id("a video id")]
RequestId = Annotated[str, path_id("a request id")]
K = Query(ge=1, le=100)


def _detail(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return detail if isinstance(detail, str) else resp.text[:200]


async def forward(request: Request, segments: tuple[str, ...], params: dict, upstream: str = "recommender",
                  found: bool = False) -> Response:
    """GET ``/v1/<segments...>`` from ``upstream``, each segment percent-quoted; ``found``: a 404 is passed on."""
    settings = request.app.state.settings
    client: httpx.AsyncClient = request.app.state.upstream
    base = getattr(settings, f"{upstream}_url").rstrip("/")
    url = base + "/v1/" + "/".join(quote(s, safe="") for s in segments)
    try:
        resp = await client.get(url, params=params, timeout=settings.upstream_timeout_s)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise HTTPException(503, f"{upstream} unavailable: {type(exc).__name__}",
                            headers={"Retry-After": str(max(1, math.ceil(settings.upstream_timeout_s)))}) from exc
    if 200 <= resp.status_code < 300:
        return Response(resp.content, status_code=resp.status_code, media_type=resp.headers.get("content-type"))
    if resp.status_code == 404 and found:
        raise HTTPException(404, _detail(resp))
    raise HTTPException(502, f"{upstream} answered HTTP {resp.status_code}: {_detail(resp)}")


@router.get("/feed/{user_id}", summary="A user's feed, each item with the reason it is there",
            responses=read_responses("recommender", "No such route: an id cannot contain a slash"))
async def feed(user_id: UserId, request: Request, _: ApiKey, k: Annotated[int, K] = 20) -> Response:
    return await forward(request, ("feed", user_id), {"k": k})


@router.get("/videos/{video_id}/similar", summary="Videos similar to one video",
            responses=read_responses("recommender", "The video is not in the catalogue"))
async def similar(video_id: VideoId, request: Request, _: ApiKey, k: Annotated[int, K] = 10) -> Response:
    return await forward(request, ("videos", video_id, "similar"), {"k": k}, found=True)


@router.get("/search", summary="Text search over what videos show (their concepts), titles and tags; each hit "
                                "with its topic and concepts, none for a query of stop words only",
            responses=read_responses("recommender"))
async def search(request: Request, _: ApiKey, q: Annotated[str, Query(min_length=1, max_length=200)],
                 k: Annotated[int, K] = 10) -> Response:
    return await forward(request, ("search",), {"q": q, "k": k})


@router.get("/stylizations/{request_id}", tags=["stylization"],
            summary="Status of a stylization request: running (with progress), ok (with the output) or failed",
            responses=read_responses("stylization service", "No such request seen yet"))
async def stylization_status(request_id: RequestId, request: Request, _: ApiKey) -> Response:
    return await forward(request, ("stylizations", request_id), {}, "stylization", found=True)


@router.get("/styles", tags=["stylization"], summary="Styles, looks and LUTs a stylization request may name",
            responses=read_responses("stylization service"))
async def styles(request: Request, _: ApiKey) -> Response:
    return await forward(request, ("styles",), {}, "stylization")


@router.get("/generations/{request_id}", tags=["generation"], summary="Result of a generation request",
            responses=read_responses("generation service", "No such request seen yet"))
async def generation_status(request_id: RequestId, request: Request, _: ApiKey) -> Response:
    return await forward(request, ("generations", request_id), {}, "generation", found=True)


@router.get("/topics", tags=["generation"], summary="Topics the generator knows",
            responses=read_responses("generation service"))
async def generation_topics(request: Request, _: ApiKey) -> Response:
    return await forward(request, ("topics",), {}, "generation")
