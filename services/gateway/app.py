"""Gateway wiring: settings, broker connection, middleware, routes, /health /ready /metrics."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.middleware import Middleware

from shared import topics
from shared.bus import make_broker
from shared.ownership import Owners, members_topic
from shared.service import build_app
from shared.settings import Settings
from services.gateway.auth import all_keys
from services.gateway.insights import router as insights_router
from services.gateway.limits import SERVICE, RequestGuard, rejected_requests
from services.gateway.outage import BusState, repeated_logs_suppressed
from services.gateway.owners import follow_owners
from services.gateway.proxy import router as proxy_router
from services.gateway.routes import router

CONSUMES: tuple[topics.Consumes, ...] = ()
PUBLISHES = (  # the routes (routes.py) turn requests into these events
    topics.Publishes(topics.VIDEOS_UPLOADED, "POST /v1/videos"),
    topics.Publishes(topics.WATCH_EVENTS, "POST /v1/events/watch and /v1/events/watch/batch"),
    topics.Publishes(topics.STYLIZE_REQUESTS, "POST /v1/stylizations"),
    topics.Publishes(topics.GENERATION_REQUESTS, "POST /v1/generations"),
    topics.Publishes(topics.INSIGHTS_REQUESTS, "POST /v1/insights/uploads"),
)


def create_app(root: Settings) -> FastAPI:
    """The gateway's app; ``root`` is the settings root built at start-up (its gateway, kafka, fetch and
    generation sections are used)."""
    settings, kafka, fetch = root.gateway, root.kafka, root.fetch
    broker = make_broker(SERVICE, kafka)
    bus = BusState(lambda timeout: broker.ping(timeout=timeout), kafka.request_timeout_ms / 1000)
    owners = Owners()  # which recommender replica serves which partition, from the memberships topic

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # around the broker's start and stop (shared/service.py)
        fetch.media_root.mkdir(parents=True, exist_ok=True)
        with repeated_logs_suppressed():
            async with httpx.AsyncClient() as upstream:
                app.state.upstream = upstream
                yield

    @asynccontextmanager
    async def running(app: FastAPI):  # while the broker runs: its outage probe stops before it does
        follower = asyncio.get_running_loop().create_task(
            follow_owners(owners, kafka.bootstrap_servers, members_topic(settings.recommender_group),
                          topics.WATCH_EVENTS.partitions, client_id=f"{kafka.client_id}-{SERVICE}-owners"),
            name="gateway-owners")
        try:
            yield
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            await bus.close()

    keys = all_keys(settings)
    # the guard's refusals (401, 413, 429) are counted by the shell's request metrics around it
    guard = Middleware(RequestGuard, keys=keys, max_bytes=settings.max_body_bytes,
                       rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst)
    app = build_app(SERVICE, broker, lifespan=lifespan, running=running, middleware=[guard],
                    description="HTTP API for platform backends: register uploads, record watch events. Every /v1 "
                                "route needs an API key (X-API-Key); errors are JSON {detail, errors?}.")
    app.state.settings = settings
    app.state.fetch = fetch
    app.state.generation = root.generation
    app.state.bus = bus
    app.state.owners = owners

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
    app.include_router(insights_router)
    return app
