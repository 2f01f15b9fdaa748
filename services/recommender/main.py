"""Entry point: ``clipstream run recommender``."""

from __future__ import annotations

from services.recommender.app import create_app
from shared.service import serve
from shared.settings import RecommenderSettings, ServiceSettings


async def run(port: int | None = None) -> None:
    settings = RecommenderSettings()
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    await serve(create_app(settings=settings), ServiceSettings(host=settings.host, port=settings.port))
