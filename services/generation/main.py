"""Entry point: ``clipstream run generation``."""

from __future__ import annotations

from services.generation.app import create_app
from shared.service import serve
from shared.settings import GenerationSettings, ServiceSettings


async def run(port: int | None = None) -> None:
    settings = GenerationSettings()
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    await serve(create_app(settings=settings), ServiceSettings(host=settings.host, port=settings.port))
