"""Read routes the gateway forwards to the recommender and the stylization service, behind the same API keys."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, HTTPException, Query, Request, Response

from services.gateway.auth import ApiKey

router = APIRouter(prefix="/v1", tags=["feed"])


async def forward(request: Request, path: str, params: dict, upstream: str = "recommender") -> Response:
    settings = request.app.state.settings
    client: httpx.AsyncClient = request.app.state.upstream
    base = getattr(settings, f"{upstream}_url")
    try:
        resp = await client.get(f"{base}{path}", params=params, timeout=settings.upstream_timeout_s)
    except httpx.HTTPError as exc:
        raise HTTPException(503, f"{upstream} unavailable: {type(exc).__name__}") from exc
    return Response(resp.content, status_code=resp.status_code, media_type=resp.headers.get("content-type"))


@router.get("/feed/{user_id}", summary="A user's feed, each item with the reason it is there")
async def feed(user_id: str, request: Request, _: ApiKey, k: Annotated[int, Query(ge=1, le=100)] = 20) -> Response:
    return await forward(request, f"/v1/feed/{user_id}", {"k": k})


@router.get("/videos/{video_id}/similar", summary="Videos similar to one video")
async def similar(video_id: str, request: Request, _: ApiKey, k: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
    return await forward(request, f"/v1/videos/{video_id}/similar", {"k": k})


@router.get("/search", summary="Text search over titles and tags (the encoder's text model)")
async def search(request: Request, _: ApiKey, q: Annotated[str, Query(min_length=1, max_length=200)],
                 k: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
    return await forward(request, "/v1/search", {"q": q, "k": k})


@router.get("/stylizations/{request_id}", tags=["stylization"],
            summary="Status of a stylization request: running (with progress), ok (with the output) or failed")
async def stylization_status(request_id: str, request: Request, _: ApiKey) -> Response:
    return await forward(request, f"/v1/stylizations/{request_id}", {}, "stylization")


@router.get("/styles", tags=["stylization"], summary="Styles, looks and LUTs a stylization request may name")
async def styles(request: Request, _: ApiKey) -> Response:
    return await forward(request, "/v1/styles", {}, "stylization")


@router.get("/generations/{request_id}", tags=["generation"], summary="Result of a generation request")
async def generation_status(request_id: str, request: Request, _: ApiKey) -> Response:
    return await forward(request, f"/v1/generations/{request_id}", {}, "generation")


@router.get("/topics", tags=["generation"], summary="Topics the generator knows")
async def generation_topics(request: Request, _: ApiKey) -> Response:
    return await forward(request, "/v1/topics", {}, "generation")
