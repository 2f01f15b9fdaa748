"""The one service shell: what every service's app is built on, and how it is served.

:func:`build_app` gives each of the five services the same FastAPI app around its own routes:

* ``/health`` (the process is alive), ``/ready`` (the broker answers and the service's own check
  passes) and ``/metrics`` (Prometheus text format);
* HTTP request metrics, by route template, method and status (:class:`Observe`), including answers
  of the service's own middleware and unexpected exceptions, which become a JSON 500;
* build info, ``clipstream_<service>_build_info{service, version}``;
* the broker's life: the service's ``lifespan`` runs before the broker starts (models, stores) and
  after it stops; its ``running`` block runs while the broker runs (background tasks), together
  with the log-end watch of its subscribers (:mod:`shared.log_end`).

:func:`serve` runs the app with uvicorn until SIGTERM/SIGINT; ``services/registry.py``'s ``run(name)``
reads the settings root once, builds the service's app with it and serves it (``clipstream run NAME``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

import fastapi.routing
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.middleware import Middleware
from starlette.routing import Match

from shared import log_end
from shared.metrics import counter, histogram, info
from shared.settings import ServiceSettings

VERSION = "0.1.0"
"""The version every service reports (build info, the OpenAPI documents)."""

ReadyCheck = Callable[[], Awaitable[bool]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def build_app(
    service: str,
    broker: KafkaBroker,
    *,
    description: str = "",
    ready: ReadyCheck | None = None,
    lifespan: Lifespan | None = None,
    running: Lifespan | None = None,
    middleware: Sequence[Middleware] = (),
    http_api: bool = True,
    version: str = VERSION,
) -> FastAPI:
    """The app of one service, with the ops endpoints, request metrics and build info; add its routes to it.

    ``lifespan(app)`` is entered before the broker starts and left after it stops; ``running(app)`` is
    entered once the broker runs and left before it stops. ``ready`` is checked by ``/ready`` besides the
    broker. ``middleware`` runs inside the request metrics, so its own answers are counted. A service
    without an HTTP API of its own (``http_api=False``, the encoder) serves no OpenAPI document or /docs.
    """
    info(service, "build", "Service name and version.").info({"service": service, "version": version})
    requests_total, latency = http_metrics(service)  # registered now: /metrics lists them before any request
    docs: dict[str, Any] = {} if http_api else {"openapi_url": None, "docs_url": None, "redoc_url": None}
    app = FastAPI(title=f"ClipStream {service}", version=version, description=description,
                  lifespan=_broker_lifespan(broker, lifespan, running),
                  middleware=[Middleware(Observe, service=service, requests_total=requests_total, latency=latency),
                              *middleware], **docs)
    app.state.broker = broker
    add_ops_routes(app, broker, ready)
    return app


def _broker_lifespan(broker: KafkaBroker, lifespan: Lifespan | None, running: Lifespan | None) -> Lifespan:
    @asynccontextmanager
    async def broker_lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app) if lifespan else nullcontext():
            await broker.start()
            try:
                async with log_end.running(broker), running(app) if running else nullcontext():
                    yield
            finally:
                await broker.stop()

    return broker_lifespan


def add_ops_routes(app: FastAPI, broker: KafkaBroker, ready: ReadyCheck | None = None) -> None:
    """``/health``, ``/ready`` (both in the OpenAPI document, tag ``ops``) and ``/metrics`` (not in it)."""

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


async def send_error(send: Any, status: int, detail: str, headers: Sequence[tuple[str, str]] = ()) -> None:
    """A JSON ``{"detail": ...}`` answer (the services' error shape), straight to the ASGI ``send``."""
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(name.lower().encode(), value.encode()) for name, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def http_metrics(service: str) -> tuple[Counter, Histogram]:
    """``clipstream_<service>_http_requests_total{route, method, status}`` and
    ``clipstream_<service>_http_request_duration_seconds{route, method}``."""
    return (counter(service, "http_requests", "HTTP requests by route, method and status.", ("route", "method", "status")),
            histogram(service, "http_request_duration", "HTTP request latency by route and method.", ("route", "method")))


def route_templates(routes: Iterable[Any]) -> list[Any]:
    """The routes that have a path template, included routers expanded (recent FastAPI versions keep an
    included router as one entry of the app's routes; earlier ones copy its routes into that list)."""
    expand = getattr(fastapi.routing, "iter_route_contexts", None)
    found = expand(list(routes)) if expand is not None else routes
    return [r for r in found if isinstance(getattr(r, "path", None), str)]


class Observe:
    """Counts and times every request by route template, method and status (:func:`http_metrics`), including
    the answers of the middleware inside it (the gateway's 401, 413, 429) and unexpected exceptions, which
    become a JSON 500 here. A request refused before routing is named by the template it would have
    matched, a path no route has by ``unmatched``.
    """

    def __init__(self, app: Any, service: str, requests_total: Counter, latency: Histogram) -> None:
        self.app, self.service = app, service
        self.requests_total, self.latency = requests_total, latency
        self.log = logging.getLogger(f"clipstream.{service}")

    @staticmethod
    def route_of(scope: Any) -> str:
        route = scope.get("route")
        if route is None and "app" in scope:  # refused before routing: find the template it would have matched
            routes = route_templates(getattr(scope["app"], "routes", ()))
            route = next((r for r in routes if r.matches(scope)[0] is Match.FULL), None)
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
            self.log.exception("unhandled error answering %s %s", scope.get("method"), self.route_of(scope))
            if status is None:
                await send_error(send, 500, f"internal error: the {self.service} failed to handle this request "
                                            "(logged); it was not caused by the input alone")
            status = 500
        finally:
            name, method = self.route_of(scope), scope.get("method", "")
            self.requests_total.labels(name, method, str(status or 500)).inc()
            self.latency.labels(name, method).observe(time.perf_counter() - started)


async def serve(app: Any, settings: ServiceSettings) -> None:
    """Run an ASGI app until SIGTERM/SIGINT."""
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                            access_log=False, lifespan="on")
    await uvicorn.Server(config).serve()


def limit_blas(threads: int) -> None:
    """At most ``threads`` BLAS threads in this process from now on (``ServiceSettings.blas_threads``); 0 leaves the
    library's own default. Through threadpoolctl, which finds the BLAS numpy loaded, whichever it is (numpy is
    imported here first: a library not loaded yet is not limited)."""
    if threads > 0:
        import numpy  # noqa: F401
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads, user_api="blas")


def configure_logging(level: str = "info") -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
