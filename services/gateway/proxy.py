"""Read routes the gateway forwards to the recommender, stylization and generation services, behind the same API keys.

Path parameters must be identifiers (the pattern every id in the events has; 422 otherwise) and are
percent-quoted into the internal URL, so no input can add a query, a fragment or a path segment to
it. What the service answers is passed on when it is a result (2xx) or a 404; any other answer, or
none, becomes a documented 502 or 503 with the gateway's error body. A feed is asked of the recommender
replica that serves the user's partition (``routing.py``): 503 with ``Retry-After`` when none does within
``owner_wait_s``.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, get_args
from urllib.parse import quote

import httpx
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from shared import topics
from shared.events import Identifier
from shared.ownership import partition_for
from services.gateway.auth import ApiKey
from services.gateway.routing import feed_routes, route_feed
from services.gateway.schemas import read_responses

router = APIRouter(prefix="/v1", tags=["feed"])
log = logging.getLogger("clipstream.gateway")

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


def unavailable(detail: str, retry_after_s: float) -> HTTPException:
    return HTTPException(503, detail, headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


def answer(resp: httpx.Response, upstream: str, found: bool = False) -> Response:
    """What the gateway says for ``upstream``'s answer: a 2xx as it is, a 404 if ``found``, otherwise a 502."""
    if 200 <= resp.status_code < 300:
        return Response(resp.content, status_code=resp.status_code, media_type=resp.headers.get("content-type"))
    if resp.status_code == 404 and found:
        raise HTTPException(404, _detail(resp))
    raise HTTPException(502, f"{upstream} answered HTTP {resp.status_code}: {_detail(resp)}")


def quoted(segments: tuple[str, ...]) -> str:
    """``/v1/<segments...>``, each segment percent-quoted."""
    return "/v1/" + "/".join(quote(s, safe="") for s in segments)


async def forward(request: Request, segments: tuple[str, ...], params: dict, upstream: str = "recommender",
                  found: bool = False) -> Response:
    """GET ``/v1/<segments...>`` from ``upstream``, each segment percent-quoted; ``found``: a 404 is passed on."""
    settings = request.app.state.settings
    client: httpx.AsyncClient = request.app.state.upstream
    url = getattr(settings, f"{upstream}_url").rstrip("/") + quoted(segments)
    try:
        resp = await client.get(url, params=params, timeout=settings.upstream_timeout_s)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise unavailable(f"{upstream} unavailable: {type(exc).__name__}", settings.upstream_timeout_s) from exc
    return answer(resp, upstream, found)


@router.get("/feed/{user_id}", summary="A user's feed, each item with the reason it is there",
            responses=read_responses("recommender", "No such route: an id cannot contain a slash",
                                     unavailable="No recommender replica serves the user's partition (a rebalance, "
                                                 "or its replica is down) within CLIPSTREAM_GATEWAY_OWNER_WAIT_S, or "
                                                 "the recommender is not running, not reachable, or timed out"))
async def feed(user_id: UserId, request: Request, _: ApiKey, k: Annotated[int, K] = 20) -> Response:
    # asked of the recommender replica that serves the user's partition of watch.events (routing.py)
    settings = request.app.state.settings
    partition = partition_for(user_id, topics.WATCH_EVENTS.partitions)
    routed = await route_feed(request.app.state.upstream, request.app.state.owners, partition,
                              quoted(("feed", user_id)), {"k": k}, fallback_url=settings.recommender_url,
                              wait_s=settings.owner_wait_s, timeout_s=settings.upstream_timeout_s)
    feed_routes.labels(routed.outcome).inc()
    if routed.response is not None:
        return answer(routed.response, "recommender")
    if routed.outcome == "fallback":
        raise unavailable(f"recommender unavailable: {routed.error}", settings.upstream_timeout_s)
    log.warning("feed request: partition %d has no serving recommender replica after %.1f s (%s; asked last: %s)",
                partition, settings.owner_wait_s, routed.error, routed.url)
    raise unavailable(f"partition {partition} has no serving recommender replica (rebalance or replica down): "
                      f"{routed.error}", settings.owner_wait_s)


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
