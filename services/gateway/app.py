"""Gateway wiring: settings, broker connection, middleware, routes, /health /ready /metrics."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import BaseRoute, Match

from shared import topics
from shared.bus import make_broker
from shared.http_ops import add_ops_routes
from shared.metrics import counter, histogram, info
from shared.settings import GatewaySettings, GenerationSettings, KafkaSettings
from services.gateway.limits import SERVICE, RequestGuard, rejected_requests, send_error
from services.gateway.outage import BusState, repeated_logs_suppressed
from services.gateway.proxy import router as proxy_router
from services.gateway.routes import router

VERSION = "0.1.0"
log = logging.getLogger("clipstream.gateway")
CONSUMES: tuple[topics.Consumes, ...] = ()
PUBLISHES = (  # the routes (routes.py) turn requests into these events
    topics.Publishes(topics.VIDEOS_UPLOADED, "POST /v1/videos"),
    topics.Publishes(topics.WATCH_EVENTS, "POST /v1/events/watch and /v1/events/watch/batch"),
    topics.Publishes(topics.STYLIZE_REQUESTS, "POST /v1/stylizations"),
    topics.Publishes(topics.GENERATION_REQUESTS, "POST /v1/generations"),
)


class Observe:
    """Counts and times every request by route template, method and status, including the answers of the
    middleware inside it (401, 413, 429) and unexpected exceptions, which become a JSON 500 here."""

    def __init__(self, app: Any, routes: Any, requests_total: Any, latency: Any) -> None:
        self.app, self.routes = app, routes
        self.requests_total, self.latency = requests_total, latency

    def route_of(self, scope: Any) -> str:
        route = scope.get("route")
        if route is None:  # refused before routing: find the template it would have matched
            route = next((r for r in self.routes if r.matches(scope)[0] is Match.FULL), None)
        return getattr(route, "path", "unmatched")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status: int | None = None

        async def observed_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception:
            log.exception("unhandled error answering %s %s", scope.get("method"), self.route_of(scope))
            if status is None:
                await send_error(send, 500, "internal error: the gateway failed to handle this request "
                                            "(logged); it was not caused by the input alone")
            status = 500
        finally:
            name = self.route_of(scope)
            self.requests_total.labels(name, scope.get("method", ""), str(status or 500)).inc()
            self.latency.labels(name).observe(time.perf_counter() - started)


def create_app(settings: GatewaySettings | None = None, kafka: KafkaSettings | None = None,
               generation: GenerationSettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    kafka = kafka or KafkaSettings()
    broker = make_broker(SERVICE, kafka)
    bus = BusState(lambda timeout: broker.ping(timeout=timeout), kafka.request_timeout_ms / 1000)
    requests_total = counter(SERVICE, "http_requests", "HTTP requests by route, method and status.", ("route", "method", "status"))
    latency = histogram(SERVICE, "http_request_duration", "HTTP request latency by route.", ("route",))
    info(SERVICE, "build", "Service name and version.").info({"service": SERVICE, "version": VERSION})

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.media_root.mkdir(parents=True, exist_ok=True)
        with repeated_logs_suppressed():
            await broker.start()
            app.state.upstream = httpx.AsyncClient()
            try:
                yield
            finally:
                await bus.close()
                await app.state.upstream.aclose()
                await broker.stop()

    app = FastAPI(title="ClipStream gateway", version=VERSION, lifespan=lifespan,
                  description="HTTP API for platform backends: register uploads, record watch events. Every /v1 "
                              "route needs an API key (X-API-Key); errors are JSON {detail, errors?}.")
    app.state.settings = settings
    app.state.generation = generation or GenerationSettings()
    app.state.broker = broker
    app.state.bus = bus

    add_ops_routes(app, broker)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        rejected_requests().labels("invalid_request").inc()
        errors = exc.errors()
        summary = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
        return JSONResponse({"detail": f"invalid request: {summary}",
                             "errors": [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors[:20]]},
                            status_code=422)

    app.include_router(router)
    app.include_router(proxy_router)
    keys = [k.get_secret_value() for k in settings.api_keys]
    app.add_middleware(RequestGuard, keys=keys, max_bytes=settings.max_body_bytes,
                       rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst)
    # route templates, for naming requests refused before routing (included routers are not plain routes)
    routes = [r for r in (*app.router.routes, *router.routes, *proxy_router.routes) if isinstance(r, BaseRoute)
              and hasattr(r, "path")]
    app.add_middleware(Observe, routes=routes, requests_total=requests_total, latency=latency)
    return app
