"""Recommender wiring: catalogue view, user state, two subscribers, the HTTP API and ops endpoints."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import time
import uuid
from contextlib import AsyncExitStack, asynccontextmanager

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.recommender import metrics, stats_reader, uploads
from services.recommender.api import create_router
from services.recommender.changelog_io import KafkaChangelog
from services.recommender.claims import KafkaClaims
from services.recommender.core.catalogue import Catalogue
from services.recommender.engine import Recommender
from services.recommender.handlers import CatalogueReader, dead_letter, on_watch_event
from services.recommender.insights import keep_reach_fresh
from services.recommender.partitions import Partitions, Rebalance
from services.recommender.reach_index import ReachIndex
from services.recommender.uploads import Uploads
from shared import topics
from shared.bus import make_broker
from shared.codec import Rejection
from shared.consumer import consume
from shared.events import DeadLetterReason, WatchEvent
from shared.inference import ModelError
from shared.ownership import changelog_topic, members_topic
from shared.replay import Tail
from shared.runtime.admin import ensure_recommender_topics
from shared.runtime.heap import freeze_after_collections, settle_heap
from shared.search import QueryEncoder
from shared.service import build_app
from shared.settings import RecommenderSettings, Settings
from shared.vector_space import ModelSpace, model_space
from shared.vectors import open_store

GROUP = "clipstream-recommender"  # the default of RecommenderSettings.group_id
CONSUMES = (
    topics.Consumes(topics.WATCH_EVENTS, "<group>", "user state per partition, stored with the offset it reflects; "
                    "the replicas' group is RecommenderSettings.group_id (clipstream-recommender by default)"),
    topics.Consumes(topics.VIDEOS_EMBEDDED, "<none>", "every replica reads the whole topic into its catalogue "
                    "view, without a group: once to its end at start-up, then followed"),
    topics.Consumes(topics.INSIGHTS_COMPLETED, "<none>", "every replica reads the unpublished uploads' vectors, "
                    "without a group, to answer creator insight polls for the partitions it serves"),
)
PUBLISHES: tuple[topics.Publishes, ...] = ()
log = logging.getLogger(__name__)


def advertised_url(settings: RecommenderSettings) -> str:
    """Where the gateway reaches this replica: the setting, else this host's address and port."""
    if settings.advertised_url:
        return settings.advertised_url.rstrip("/")
    host = socket.gethostname() if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def collections(space: ModelSpace) -> tuple[str, str]:
    """The recommender's own collections (video vectors, search vectors) for a model, never the encoder's."""
    return space.collections(metrics.SERVICE)


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
    replica = f"{socket.gethostname()}-{instance}"[-120:].lstrip("-_.:@") or instance
    group, bootstrap = settings.group_id, kafka.bootstrap_servers
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
    try:  # the users' long-term vectors with their bars, for creator insights (reach_index.py)
        users_store = open_store(f"{metrics.SERVICE}-users-{space.id}", space.video_dim, where)
    except BaseException:
        store.close()
        search_store.close()
        raise
    catalogue = Catalogue(store, search_store, space.version)
    # with the changelog, every replica ranks with the statistics of all partitions, read from it
    rec = Recommender(settings, catalogue, topics.WATCH_EVENTS.name, query_path(root, space),
                      shared_stats=settings.changelog)
    rec.reach = ReachIndex(users_store, settings.insights_top_k)
    stats = rec.shared
    broker = make_broker(metrics.SERVICE, kafka)
    subscriber_ref: dict = {}
    parts = Partitions(rec, topics.WATCH_EVENTS.name, topics.WATCH_EVENTS.partitions,
                       flush_interval_s=settings.flush_interval_s, group=group,
                       consumer=lambda: getattr(subscriber_ref.get("subscriber"), "consumer", None))

    async def on_watch_events(event: WatchEvent, record) -> None:
        await on_watch_event(rec, event, record)

    subscriber_ref["subscriber"] = consume(
        broker, topics.WATCH_EVENTS, on_watch_events, service=metrics.SERVICE, group_id=group,
        settings=kafka, with_record=True, after_batch=parts.after_batch, admit=parts.admit,
        settled=parts.settled, own_position=parts.own_position, restarted=parts.restarted,
        listener=Rebalance(parts), max_records=settings.max_poll_records)
    readers: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # around the broker's start and stop (shared/service.py)
        changelog = changelog_topic(group)
        await ensure_recommender_topics(bootstrap, group, topics.WATCH_EVENTS.partitions, kafka.replication_factor)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id=f"{kafka.client_id}-{metrics.SERVICE}",
                                    max_batch_size=1 << 20, max_request_size=16 << 20, linger_ms=0,
                                    request_timeout_ms=max(kafka.request_timeout_ms, 10000))
        await producer.start()
        async with AsyncExitStack() as stack:
            stack.push_async_callback(producer.stop)
            parts.claims = KafkaClaims(producer, members_topic(group), replica, advertised_url(settings))
            parts.dead_letter = lambda record, why: dead_letter(
                producer, record, Rejection(DeadLetterReason.MALFORMED_JSON, why), kafka.max_message_bytes)
            # the catalogue first: events applied before their video's vector is known would differ
            # from a replay, so the view is read up to the topic's end before consuming watch events
            tail = await stack.enter_async_context(Tail(
                bootstrap, topics.VIDEOS_EMBEDDED.name, idle_ms=kafka.fetch_max_wait_ms,
                max_partition_fetch_bytes=max(kafka.max_message_bytes * 16, 1 << 20)))
            readers["catalogue"] = CatalogueReader(rec, tail, producer, kafka.max_message_bytes, f"{group}/{replica}")
            readers["uploads"] = await stack.enter_async_context(Tail(
                bootstrap, topics.INSIGHTS_COMPLETED.name, idle_ms=kafka.fetch_max_wait_ms,
                max_partition_fetch_bytes=max(kafka.max_message_bytes * 16, 1 << 20)))
            readers["producer"] = producer
            loaded = await readers["catalogue"].load()
            log.info("catalogue: %d videos loaded from %s", loaded, topics.VIDEOS_EMBEDDED.name)
            if stats is not None:
                log_io = KafkaChangelog(producer, bootstrap, changelog, replica, settings.snapshot_min_entries)
                parts.changelog = readers["changelog"] = log_io
                stack.push_async_callback(log_io.close)
                start = await stats_reader.starts(log_io, topics.WATCH_EVENTS.partitions)
                readers["stats"] = await stack.enter_async_context(
                    Tail(bootstrap, changelog, start=start, idle_ms=kafka.fetch_max_wait_ms,
                         max_partition_fetch_bytes=4 << 20))
            settle_heap()
            freeze_after_collections()  # the state the stream adds, too (heap.py)
            try:
                yield
            finally:  # the broker has stopped: no batch is in flight any more
                await parts.flush()
                for partition in sorted(parts.serving):
                    await parts.claims.release(partition, parts.generation)
                parts.serving.clear()
        parts.close()
        store.close()
        search_store.close()
        users_store.close()
        shutil.rmtree(folder, ignore_errors=True)

    def quiet() -> bool:  # no batch of watch events for a second: the reach refresh may take its full share
        return time.monotonic() - parts.batch_at > 1.0

    @asynccontextmanager
    async def running(app: FastAPI):  # while the broker runs: readers, and storing what a quiet stream left
        tasks = [asyncio.create_task(parts.flush_when_idle()), asyncio.create_task(readers["catalogue"].follow()),
                 asyncio.create_task(keep_reach_fresh(rec, quiet)),
                 asyncio.create_task(uploads.follow(readers["uploads"], app.state.uploads, readers["producer"],
                                                    kafka.max_message_bytes))]
        if "stats" in readers:
            tasks.append(asyncio.create_task(stats_reader.follow(readers["stats"], stats, f"{group}/{replica}",
                                                                readers["changelog"].written)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def ready() -> bool:
        return parts.ready()

    app = build_app(metrics.SERVICE, broker, lifespan=lifespan, running=running, ready=ready,
                    description="Feeds, similar videos and text search, from real-time user state.")
    app.state.recommender = rec
    app.state.partitions = parts
    app.state.uploads = Uploads()
    app.include_router(create_router(settings.max_k))
    return app
