"""What every consumer service's entry point serves beside its subscribers.

``/metrics`` (Prometheus), ``/health`` (the process is alive) and ``/ready`` (the broker
answers and the service's own check passes), on FastStream's ASGI app, run by uvicorn.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY, make_asgi_app

from shared import log_end
from shared.metrics import info
from shared.settings import ServiceSettings

ReadyCheck = Callable[[], Awaitable[bool]]


def service_app(
    service: str,
    broker: KafkaBroker,
    *,
    ready: ReadyCheck | None = None,
    version: str = "0.1.0",
    extra_routes: Sequence[tuple[str, Any]] = (),
    **app_options: Any,
) -> AsgiFastStream:
    info(service, "build", "Service name and version.").info({"service": service, "version": version})

    @get(include_in_schema=False)
    async def health(scope: Any) -> AsgiResponse:
        return AsgiResponse(b'{"status":"ok"}', 200, headers={"content-type": "application/json"})

    @get(include_in_schema=False)
    async def is_ready(scope: Any) -> AsgiResponse:
        ok = await broker.ping(timeout=2.0) and (ready is None or await ready())
        body = b'{"status":"ready"}' if ok else b'{"status":"not ready"}'
        return AsgiResponse(body, 200 if ok else 503, headers={"content-type": "application/json"})

    own_lifespan = app_options.pop("lifespan", None)

    @asynccontextmanager
    async def lifespan(*args: Any):
        async with log_end.running(broker):
            if own_lifespan is None:
                yield
            else:
                async with own_lifespan(*args):
                    yield

    return AsgiFastStream(
        broker,
        lifespan=lifespan,
        asgi_routes=[("/metrics", make_asgi_app(REGISTRY)), ("/health", health), ("/ready", is_ready), *extra_routes],
        **app_options,
    )


async def serve(app: Any, settings: ServiceSettings) -> None:
    """Run an ASGI app (FastStream or FastAPI) until SIGTERM/SIGINT."""
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                            access_log=False, lifespan="on")
    await uvicorn.Server(config).serve()


def configure_logging(level: str = "info") -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
