"""/health, /ready and /metrics for services whose outer app is FastAPI (gateway, recommender)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


def add_ops_routes(app: FastAPI, broker: KafkaBroker, ready: Callable[[], Awaitable[bool]] | None = None) -> None:
    @app.get("/health", tags=["ops"])
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def is_ready() -> JSONResponse:
        ok = await broker.ping(timeout=2.0) and (ready is None or await ready())
        return JSONResponse({"status": "ready" if ok else "not ready"}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
