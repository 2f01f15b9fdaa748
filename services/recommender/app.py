"""Recommender wiring: catalogue view, user state, two subscribers, the HTTP API and ops endpoints."""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.recommender import metrics
from services.recommender.api import create_router
from services.recommender.core.catalogue import Catalogue
from services.recommender.engine import Recommender
from services.recommender.handlers import Handlers, ResumeFromStoredOffsets
from shared import topics
from shared.bus import make_broker
from shared.consumer import consume
from shared.inference import ModelError
from shared.runtime.heap import settle_heap
from shared.search import QueryEncoder
from shared.service import build_app
from shared.settings import Settings
from shared.vector_space import ModelSpace, model_space
from shared.vectors import open_store

GROUP = "clipstream-recommender"
CONSUMES = (
    topics.Consumes(topics.WATCH_EVENTS, GROUP, "user state per partition, stored with the offset it reflects"),
    topics.Consumes(topics.VIDEOS_EMBEDDED, f"{GROUP}-catalogue-<instance>",
                    "every instance reads the whole topic into its catalogue view"),
)
PUBLISHES: tuple[topics.Publishes, ...] = ()
log = logging.getLogger(__name__)


def collections(space: ModelSpace) -> tuple[str, str]:
    """The recommender's collections (video vectors, search vectors) for a model: a new model gets new
    ones, so a Qdrant server never holds vectors of two sizes in one collection."""
    return f"{metrics.SERVICE}-{space.id}", f"{metrics.SERVICE}-{space.id}-search"


def query_path(root: Settings, space: ModelSpace):
    """Text queries to search vectors (``QueryEncoder.vectors``), or None: /v1/search then answers empty."""
    try:
        queries = QueryEncoder(root.models, root.encoder)
    except ModelError as exc:
        log.warning("text search is off: %s", exc)
        return None
    if queries.dim != space.search_dim:
        log.error("text search is off: the text model embeds to %d dimensions, its manifest says %d",
                  queries.dim, space.search_dim)
        return None
    return queries.vectors


def create_app(root: Settings) -> FastAPI:
    """The recommender's app; ``root`` is the settings root built at start-up (its kafka, qdrant,
    recommender and models sections are used)."""
    kafka, settings, qdrant = root.kafka, root.recommender, root.qdrant
    instance = uuid.uuid4().hex[:8]
    # the vector sizes and the model version the catalogue accepts: the prepared models' (the encoder's)
    space = model_space(root.models)
    # the catalogue is a view rebuilt from videos.embedded at every start: shards of this process's own
    folder = qdrant.data_dir / metrics.SERVICE / instance
    where = qdrant.model_copy(update={"data_dir": folder})
    videos, searchable = collections(space)
    store = open_store(videos, space.video_dim, where)
    try:
        search_store = open_store(searchable, space.search_dim, where)
    except BaseException:
        store.close()
        raise
    catalogue = Catalogue(store, search_store, space.version)
    rec = Recommender(settings, catalogue, topics.WATCH_EVENTS.name, query_path(root, space))
    subscriber_ref: dict = {}
    handlers = Handlers(rec, settings.flush_interval_s, subscriber_ref)
    broker = make_broker(metrics.SERVICE, kafka)
    subscriber_ref["subscriber"] = consume(
        broker, topics.WATCH_EVENTS, handlers.on_watch_events, service=metrics.SERVICE, group_id=GROUP,
        settings=kafka, with_record=True, after_batch=handlers.after_watch_batch, admit=handlers.admit,
        settled=handlers.settled, own_position=handlers.own_position, restarted=handlers.restarted,
        listener=ResumeFromStoredOffsets(handlers))
    # every instance needs every video: a group of its own, read from the beginning
    consume(broker, topics.VIDEOS_EMBEDDED, handlers.on_videos_embedded, service=metrics.SERVICE,
            group_id=f"{GROUP}-catalogue-{instance}", settings=kafka.model_copy(update={"auto_offset_reset": "earliest"}))

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # around the broker's start and stop (shared/service.py)
        # the catalogue first: events applied before their video's vector is known would differ
        # from a replay, so the view is rebuilt up to the topic's end before consuming watch events
        loaded = await handlers.load_catalogue(kafka.bootstrap_servers)
        logging.getLogger(__name__).info("catalogue: %d videos loaded from %s", loaded, topics.VIDEOS_EMBEDDED.name)
        settle_heap()
        try:
            yield
        finally:  # the broker has stopped: no batch is in flight any more
            await handlers.flush()
            rec.close()
            store.close()
            search_store.close()
            shutil.rmtree(folder, ignore_errors=True)

    @asynccontextmanager
    async def running(app: FastAPI):  # while the broker runs: store what a quiet stream left unstored
        flusher = asyncio.create_task(handlers.flush_when_idle())
        try:
            yield
        finally:
            flusher.cancel()

    app = build_app(metrics.SERVICE, broker, lifespan=lifespan, running=running,
                    description="Feeds, similar videos and text search, from real-time user state.")
    app.state.recommender = rec
    app.include_router(create_router(settings.max_k))
    return app
