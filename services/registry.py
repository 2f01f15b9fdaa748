"""The five deployables, and ``run(name)``: what ``clipstream run NAME`` does for each of them.

Every service's ``services/<name>/app.py`` has a ``create_app`` that builds its app on the one service
shell (``shared/service.py``'s ``build_app``); :func:`run` reads the settings that say where it listens,
builds the app and serves it until SIGTERM.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from pydantic_settings import BaseSettings

from shared.settings import (GatewaySettings, GenerationSettings, RecommenderSettings, ServiceSettings,
                             StylizationSettings)


@dataclass(frozen=True)
class Deployable:
    """How :func:`run` starts one service."""

    listen: type[BaseSettings]
    """Its settings with ``host`` and ``port`` (where it serves its HTTP API and /metrics /health /ready)."""
    app_takes_settings: bool = True
    """Whether ``create_app`` takes those settings (``settings=``); the encoder's app reads its own."""
    preflight: str = ""
    """``module:function`` called with the settings before anything starts; it may refuse to start
    (``SystemExit``). Named, not imported, so that the CLI's parser does not load the services."""


SERVICES: dict[str, Deployable] = {
    "gateway": Deployable(GatewaySettings, preflight="services.gateway.auth:refuse_exposed_default_key"),
    "encoder": Deployable(ServiceSettings, app_takes_settings=False),
    "recommender": Deployable(RecommenderSettings),
    "stylization": Deployable(StylizationSettings),
    "generation": Deployable(GenerationSettings),
}


def deployable(name: str) -> Deployable:
    try:
        return SERVICES[name]
    except KeyError:
        raise SystemExit(f"unknown service {name!r}; available: {', '.join(sorted(SERVICES))}") from None


def build(name: str, port: int | None = None) -> tuple[Any, Any]:
    """The service's settings (from the environment; ``port`` overrides theirs) and its app, not started."""
    spec = deployable(name)
    settings = spec.listen()
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    if spec.preflight:
        module, _, function = spec.preflight.partition(":")
        getattr(importlib.import_module(module), function)(settings)
    create_app = importlib.import_module(f"services.{name}.app").create_app
    return settings, create_app(settings=settings) if spec.app_takes_settings else create_app()


async def run(name: str, port: int | None = None) -> None:
    """``clipstream run NAME``: build the service's app and serve it until SIGTERM/SIGINT."""
    from shared.service import serve

    settings, app = build(name, port)
    await serve(app, ServiceSettings(host=settings.host, port=settings.port))
