"""Gateway wiring: settings, broker connection, middleware, routes, /health /ready /metrics."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from shared.bus import make_broker
from shared.metrics import counter, histogram, info
from shared.settings import GatewaySettings, KafkaSettings
from services.gateway.limits import SERVICE, BodySizeLimit, rejected_requests
from services.gateway.routes import router

VERSION = "0.1.0"


def create_app(settings: GatewaySettings | None = None, kafka: KafkaSettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    broker = make_broker(SERVICE, kafka or KafkaSettings())
    requests_total = counter(SERVICE, "http_requests", "HTTP requests by route, method and status.", ("route", "method", "status"))
    latency = histogram(SERVICE, "http_request_duration", "HTTP request latency by route.", ("route",))
    info(SERVICE, "build", "Service name and version.").info({"service": SERVICE, "version": VERSION})

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.media_root.mkdir(parents=True, exist_ok=True)
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()

    app = FastAPI(title="ClipStream gateway", version=VERSION, lifespan=lifespan,
                  description="HTTP API for platform backends: register uploads, record watch events.")
    app.state.settings = settings
    app.state.broker = broker

    @app.middleware("http")
    async def observe(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        requests_total.labels(name, request.method, str(response.status_code)).inc()
        latency.labels(name).observe(time.perf_counter() - started)
        return response

    @app.get("/health", tags=["ops"])
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready() -> JSONResponse:
        ok = await broker.ping(timeout=2.0)
        return JSONResponse({"status": "ready" if ok else "not ready"}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        rejected_requests().labels("invalid_request").inc()
        errors = exc.errors()
        summary = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
        return JSONResponse({"detail": f"invalid request: {summary}",
                             "errors": [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in errors[:20]]},
                            status_code=422)

    app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
