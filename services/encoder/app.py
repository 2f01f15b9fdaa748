"""Encoder wiring: settings, models (loaded once), vector store, broker, subscriber, ops endpoints."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.encoder import metrics
from services.encoder.engine import EncoderEngine
from services.encoder.handlers import Encoder
from shared import topics
from shared.bus import make_broker
from shared.consumer import consume
from shared.events import InsightsRequested, VideoUploaded
from shared.service import build_app
from shared.settings import Settings
from shared.vectors import VectorStore, open_store

GROUP = "clipstream-encoder"
CONSUMES = (topics.Consumes(topics.VIDEOS_UPLOADED, GROUP, "fetch, decode, embed, upsert into Qdrant"),
            topics.Consumes(topics.INSIGHTS_REQUESTS, GROUP, "fetch, decode, embed, keep cover candidates; nothing "
                                                           "stored in the collections"))
PUBLISHES = (topics.Publishes(topics.VIDEOS_EMBEDDED, "after the upsert, with the vector"),
             topics.Publishes(topics.INSIGHTS_COMPLETED, "once an unpublished upload is embedded, or failed"))


def open_stores(settings: Settings, engine: EncoderEngine) -> tuple[VectorStore, VectorStore]:
    """The encoder's two stores for ``engine.space``: video vectors and search vectors, with their payload
    indexes. Embedded shards lie under ``qdrant.data_dir / "encoder"`` (one owner process at a time: the
    service, or ``clipstream reindex`` filling a new model's collections before the service switches)."""
    qdrant, space = settings.qdrant, engine.space
    where = qdrant.model_copy(update={"data_dir": qdrant.data_dir / metrics.SERVICE})
    store = open_store(space.collection, space.video_dim, where)
    try:
        search_store = open_store(space.search_collection, space.search_dim, where)
    except BaseException:
        store.close()
        raise
    for s in (store, search_store):
        s.index_fields({"topic": "keyword", "creator_id": "keyword", "created_at": "float"})
    return store, search_store


def create_app(settings: Settings) -> FastAPI:
    """The encoder's app; ``settings`` is the root built at start-up (its kafka, qdrant, encoder, fetch, media
    and models sections are used)."""
    kafka, encoder = settings.kafka, settings.encoder
    broker = make_broker(metrics.SERVICE, kafka)
    state: dict = {}

    async def handle(event: VideoUploaded) -> None:
        await state["encoder"].on_videos_uploaded(event)

    async def handle_insights(event: InsightsRequested) -> None:
        await state["encoder"].on_insights_requested(event)

    consume(broker, topics.VIDEOS_UPLOADED, handle, service=metrics.SERVICE, group_id=GROUP,
            settings=kafka, concurrency=encoder.concurrency)
    consume(broker, topics.INSIGHTS_REQUESTS, handle_insights, service=metrics.SERVICE, group_id=GROUP,
            settings=kafka, concurrency=encoder.concurrency)

    @asynccontextmanager
    async def lifespan(*_):
        engine = EncoderEngine(settings.models, encoder, settings.media)
        engine.warmup()
        metrics.model.info({"version": engine.version, "provider": engine.backbone.provider,
                            "collection": engine.space.collection})
        store, search_store = open_stores(settings, engine)
        state["encoder"] = Encoder(engine, store, broker, settings.fetch, search_store)
        state["store"] = store
        try:
            yield
        finally:
            store.close()
            search_store.close()

    async def ready() -> bool:
        return "encoder" in state

    # no HTTP API of its own: the shell's /health, /ready and /metrics only, no OpenAPI document
    return build_app(metrics.SERVICE, broker, ready=ready, lifespan=lifespan, http_api=False)
