"""The five deployables, and ``run(name)``: what ``clipstream run NAME`` does for each of them.

Every service's ``services/<name>/app.py`` has a ``create_app(settings)`` that builds its app on the one
service shell (``shared/service.py``'s ``build_app``). :func:`run` is the services' entry point: it reads
the settings root (``shared.settings.Settings``) from the environment once, hands it to ``create_app``
and serves the app until SIGTERM. Nothing below it reads the environment.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from shared.settings import ServiceSettings, Settings


@dataclass(frozen=True)
class Deployable:
    """How :func:`run` starts one service."""

    listen: str
    """The section of the settings root with ``host`` and ``port`` (where the service serves its HTTP API and
    /metrics /health /ready)."""
    preflight: str = ""
    """``module:function`` called with that section before anything starts; it may refuse to start
    (``SystemExit``). Named, not imported, so that the CLI's parser does not load the services."""


SERVICES: dict[str, Deployable] = {
    "gateway": Deployable("gateway", preflight="services.gateway.auth:refuse_exposed_default_key"),
    "encoder": Deployable("service"),
    "recommender": Deployable("recommender"),
    "stylization": Deployable("stylization"),
    "generation": Deployable("generation"),
}


def deployable(name: str) -> Deployable:
    try:
        return SERVICES[name]
    except KeyError:
        raise SystemExit(f"unknown service {name!r}; available: {', '.join(sorted(SERVICES))}") from None


def build(name: str, port: int | None = None, settings: Settings | None = None) -> tuple[Any, Any]:
    """The section the service listens by (``port`` overrides its port) and its app, not started.

    ``settings`` is the root; by default it is read from the environment here, once.
    """
    spec = deployable(name)
    settings = settings if settings is not None else Settings()
    if port is not None:
        settings = settings.with_section(spec.listen, port=port)
    listen = getattr(settings, spec.listen)
    if spec.preflight:
        module, _, function = spec.preflight.partition(":")
        getattr(importlib.import_module(module), function)(listen)
    create_app = importlib.import_module(f"services.{name}.app").create_app
    return listen, create_app(settings)


async def run(name: str, port: int | None = None) -> None:
    """``clipstream run NAME``: build the service's app and serve it until SIGTERM/SIGINT."""
    from shared.service import limit_blas, serve

    settings = Settings()
    limit_blas(settings.service.blas_threads)
    listen, app = build(name, port, settings)
    await serve(app, ServiceSettings(host=listen.host, port=listen.port, log_level=settings.service.log_level))
