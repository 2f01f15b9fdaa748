"""Stylization wiring: style models (loaded once), two subscribers, the HTTP API and ops endpoints."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException

from services.stylization import metrics
from services.stylization.core.style_models import load_styles
from services.stylization.handlers import Stylizer, describe_styles
from shared import topics
from shared.bus import make_broker
from shared.consumer import consume
from shared.events import StylizeCompleted
from shared.jobs import public_path
from shared.service import build_app
from shared.settings import Settings

GROUP = "clipstream-stylization"
CONSUMES = (
    topics.Consumes(topics.STYLIZE_REQUESTS, GROUP, "one request at a time"),
    topics.Consumes(topics.VIDEOS_UPLOADED, f"{GROUP}-sources-<random>",
                    "every instance follows uploads to resolve video_id to a source"),
)
PUBLISHES = (topics.Publishes(topics.STYLIZE_COMPLETED, "running (progress), then ok or failed"),)


def create_app(root: Settings) -> FastAPI:
    """The stylization service's app; ``root`` is the settings root built at start-up (its kafka,
    stylization, fetch, media and models sections are used)."""
    kafka, settings = root.kafka, root.stylization
    broker = make_broker(metrics.SERVICE, kafka)
    stylizer = Stylizer(settings, {}, broker, root.fetch, root.media)
    consume(broker, topics.STYLIZE_REQUESTS, stylizer.on_stylize_requests, service=metrics.SERVICE,
            group_id=GROUP, settings=kafka)
    # which source each video_id names: every instance needs all of them, so a group of its own
    consume(broker, topics.VIDEOS_UPLOADED, stylizer.on_videos_uploaded, service=metrics.SERVICE,
            group_id=f"{GROUP}-sources-{uuid.uuid4().hex[:8]}",
            settings=kafka.model_copy(update={"auto_offset_reset": "earliest"}))

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # before the broker starts (shared/service.py)
        styles = load_styles(root.models)
        for model in styles.values():
            model.warmup()
        stylizer.styles = styles
        providers = sorted({m.provider for m in styles.values()})
        metrics.model.info({"styles": ",".join(sorted(styles)), "provider": ",".join(providers)})
        yield

    async def ready() -> bool:
        return bool(stylizer.styles)

    app = build_app(metrics.SERVICE, broker, ready=ready, lifespan=lifespan,
                    description="Style transfer, colour grading and enhancement of whole videos.")
    app.state.stylizer = stylizer

    @app.get("/v1/stylizations/{request_id}", response_model=StylizeCompleted, tags=["stylization"],
             summary="Status of a stylization request: running (with progress), ok (with the output, relative to "
                     "the output folder) or failed")
    async def status(request_id: str) -> StylizeCompleted:
        found = stylizer.status(request_id)
        if found is None:
            raise HTTPException(404, f"no stylization request {request_id!r} seen yet")
        return found.model_copy(update={"output": public_path(found.output, settings.output_dir)})

    @app.get("/v1/styles", tags=["stylization"], summary="Styles, looks and LUTs a request may name")
    async def styles() -> dict:
        return describe_styles(stylizer.styles, settings.lut_dir)

    return app
