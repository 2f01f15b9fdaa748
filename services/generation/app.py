"""Generation wiring: the generator (loaded once), the subscriber, the HTTP API and ops endpoints."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException

from services.generation import metrics
from services.generation.core.generator import load_generator
from services.generation.handlers import Generation
from shared import topics
from shared.bus import make_broker
from shared.consumer import consume
from shared.events import GenerationCompleted
from shared.jobs import public_path
from shared.service import build_app
from shared.settings import Settings

GROUP = "clipstream-generation"
CONSUMES = (topics.Consumes(topics.GENERATION_REQUESTS, GROUP),)
PUBLISHES = (topics.Publishes(topics.GENERATION_COMPLETED, "ok with artefact paths, or failed"),)


def create_app(root: Settings) -> FastAPI:
    """The generation service's app; ``root`` is the settings root built at start-up (its kafka, generation
    and models sections are used)."""
    kafka, settings = root.kafka, root.generation
    broker = make_broker(metrics.SERVICE, kafka)
    service = Generation(settings, None, broker)
    consume(broker, topics.GENERATION_REQUESTS, service.on_generation_requests,
            service=metrics.SERVICE, group_id=GROUP, settings=kafka)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # before the broker starts (shared/service.py)
        generator = load_generator(root.models)
        generator.warmup()
        service.generator = generator
        metrics.model.info({"version": generator.version, "topics": ",".join(generator.topics),
                            "provider": generator.provider})
        yield

    async def ready() -> bool:
        return service.generator is not None

    app = build_app(metrics.SERVICE, broker, ready=ready, lifespan=lifespan,
                    description="Covers, frames and short clips of a topic from the project's conditional GAN.")

    @app.get("/v1/generations/{request_id}", response_model=GenerationCompleted, tags=["generation"],
             summary="Result of a generation request, with its artefact paths (relative to the output folder)")
    async def status(request_id: str) -> GenerationCompleted:
        found = service.jobs.get(request_id)
        if found is None:
            raise HTTPException(404, f"no generation request {request_id!r} seen yet")
        return found.model_copy(update={"artefacts": [public_path(a, settings.output_dir) for a in found.artefacts]})

    @app.get("/v1/topics", tags=["generation"], summary="Topics the generator was trained on")
    async def known_topics() -> dict:
        gen = service.generator
        return {"topics": list(gen.topics) if gen else [], "model_version": gen.version if gen else None}

    return app
