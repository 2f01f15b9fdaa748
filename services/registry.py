"""Which services ``clipstream run NAME`` can start, and how."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable

SERVICES: dict[str, str] = {
    "gateway": "services.gateway.main:run",
    "encoder": "services.encoder.main:run",
    "recommender": "services.recommender.main:run",
    "stylization": "services.stylization.main:run",
    "generation": "services.generation.main:run",
}


def runner(name: str) -> Callable[[int | None], Awaitable[None]]:
    try:
        target = SERVICES[name]
    except KeyError:
        raise SystemExit(f"unknown service {name!r}; available: {', '.join(sorted(SERVICES))}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
