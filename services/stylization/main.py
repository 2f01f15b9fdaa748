"""Entry point: ``clipstream run stylization``."""

from __future__ import annotations

from services.stylization.app import create_app
from shared.service import serve
from shared.settings import ServiceSettings, StylizationSettings


async def run(port: int | None = None) -> None:
    settings = StylizationSettings()
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    await serve(create_app(settings=settings), ServiceSettings(host=settings.host, port=settings.port))
