"""watch.events in -> the engine; videos.embedded in -> the catalogue, read once: to its end before watch
events are consumed, then followed by the same reader (no second read of the topic from offset 0)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from aiokafka import AIOKafkaProducer

from services.recommender import metrics
from services.recommender.core.catalogue import VideoInfo
from services.recommender.engine import Recommender
from shared import topics
from shared.codec import Rejection, decode
from shared.consumer import send_dead_letter
from shared.events import DeadLetterReason, VideoEmbedded, WatchEvent
from shared.metrics import consumer_metrics
from shared.replay import Tail

log = logging.getLogger(__name__)
EVENTS_APPLIED, EVENTS_DUPLICATE = metrics.events.labels("applied"), metrics.events.labels("duplicate")


async def on_watch_event(rec: Recommender, event: WatchEvent, record: Any) -> None:
    """Called only for a record at the state's position (``Partitions.admit``); ``settled`` then moves it."""
    applied = rec.apply(event, record.partition)
    (EVENTS_DUPLICATE if applied.duplicate else EVENTS_APPLIED).inc()
    if not applied.video_known:
        metrics.unknown_videos.inc()
    now = time.time()
    metrics.freshness.observe(max(0.0, now - event.ts.timestamp()))
    sent = getattr(record, "timestamp", None)  # ms; -1 or None: the record carries none
    if sent is not None and sent >= 0:
        metrics.apply_lag.observe(max(0.0, now - sent / 1000))


async def dead_letter(producer: AIOKafkaProducer, record: Any, rejection: Rejection, max_bytes: int) -> None:
    """``record`` (of any topic: videos.embedded, the changelog) to ``<topic>.dlq`` (``shared.consumer``)."""
    async def send(value: bytes, dlq: str, key: bytes | None) -> None:
        await producer.send_and_wait(dlq, value, key=key)

    await send_dead_letter(send, record, rejection, metrics.SERVICE, max_bytes)


class CatalogueReader:
    """``videos.embedded`` into the engine's catalogue through one :class:`Tail`: :meth:`load` reads to the end
    (start-up), :meth:`follow` goes on from there. A record that fails to decode is dead-lettered."""

    def __init__(self, rec: Recommender, tail: Tail, producer: AIOKafkaProducer, max_bytes: int, group: str) -> None:
        self.rec, self.tail, self.producer, self.max_bytes, self.group = rec, tail, producer, max_bytes, group
        self.batches: AsyncIterator[list[Any]] = tail.batches()
        self.skipped_logged: set[str] = set()  # reasons an event was skipped for, logged once each

    async def load(self) -> int:
        """Read to the topic's end; returns the number of videos in the catalogue."""
        async for records in self.batches:
            if not records:
                break
            await self.handle(records)
        return len(self.rec.catalogue)

    async def follow(self) -> None:
        async for records in self.batches:
            await self.handle(records)

    async def handle(self, records: list[Any]) -> None:
        counters = consumer_metrics(metrics.SERVICE)
        for record in records:
            event = decode(record.value, VideoEmbedded, self.max_bytes)
            if isinstance(event, Rejection):
                await dead_letter(self.producer, record, event, self.max_bytes)
                continue
            try:
                add_video(self.rec, event, self.skipped_logged)
            except Exception as exc:  # a store outage in one video must not stop the reader
                log.exception("adding %s to the catalogue failed", event.video_id)
                await dead_letter(self.producer, record, Rejection(DeadLetterReason.PROCESSING_ERROR,
                                                                   f"{type(exc).__name__}: {exc}"), self.max_bytes)
                continue
            counters.messages.labels(record.topic, "ok").inc()
        metrics.report_lag(self.tail.topic, self.group, self.tail.lag())


def add_video(rec: Recommender, event: VideoEmbedded, logged: set[str]) -> None:
    """Into the catalogue, with its search vector (an empty one removes the video from search); an
    embedding by another model version, or of another size than the stores', is counted and skipped
    (the stores stay as they are); ``logged``: the reasons logged already (each is logged once)."""
    catalogue = rec.catalogue
    reason = catalogue.refusal(event.model_version, event.vector, event.search_vector)
    if reason is not None:
        metrics.embeddings_skipped.labels(reason).inc()
        if reason not in logged:  # once per reason; the counter has every one
            logged.add(reason)
            log.warning("%s: skipped %s (%s: model %s, %d + %d dimensions; this catalogue holds %s, %d + %s); "
                        "further ones are counted in clipstream_recommender_embeddings_skipped_total",
                        topics.VIDEOS_EMBEDDED.name, event.video_id, reason, event.model_version,
                        len(event.vector), len(event.search_vector), catalogue.model_version or "any model",
                        catalogue.store.dim, getattr(catalogue.search_store, "dim", "no search"))
        return
    info = VideoInfo(event.video_id, event.topic, event.creator_id, event.created_at.timestamp(),
                     event.duplicate_of, event.title, tuple(c.name for c in event.concepts), tuple(event.tags),
                     tuple(event.covers))
    before = catalogue.vector(event.video_id)
    before = None if before is None else before.copy()  # a row of the catalogue's matrix, overwritten by add
    catalogue.add(info, event.vector, event.search_vector)
    if before is not None and not np.array_equal(before, catalogue.vector(event.video_id)):
        rec.vector_changed()  # re-embedded with other values: stored steps must not meet the new vector
    metrics.videos.set(len(catalogue))
