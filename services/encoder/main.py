"""Entry point: ``clipstream run encoder``."""

from __future__ import annotations

from services.encoder.app import create_app
from shared.service import serve
from shared.settings import ServiceSettings


async def run(port: int | None = None) -> None:
    settings = ServiceSettings()
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    await serve(create_app(), settings)
