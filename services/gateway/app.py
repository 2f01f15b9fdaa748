"""Gateway wiring: settings, broker connection, middleware, routes, /health /ready /metrics."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared.bus import make_broker
from shared.http_ops import add_ops_routes
from shared.metrics import counter, histogram, info
from shared.settings import GatewaySettings, KafkaSettings
from services.gateway.limits import SERVICE, BodySizeLimit, rejected_requests
from services.gateway.proxy import router as proxy_router
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
        app.state.upstream = httpx.AsyncClient()
        try:
            yield
        finally:
            await app.state.upstream.aclose()
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

    add_ops_routes(app, broker)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        rejected_requests().labels("invalid_request").inc()
        errors = exc.errors()
        summary = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
        return JSONResponse({"detail": f"invalid request: {summary}",
                             "errors": [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in errors[:20]]},
                            status_code=422)

    app.include_router(router)
    app.include_router(proxy_router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
