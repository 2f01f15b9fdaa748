"""Entry point: ``clipstream run gateway``."""

from __future__ import annotations

from shared.settings import GatewaySettings, ServiceSettings
from shared.service import serve
from services.gateway.app import create_app


async def run(port: int | None = None) -> None:
    settings = GatewaySettings()
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    await serve(create_app(settings), ServiceSettings(host=settings.host, port=settings.port))
