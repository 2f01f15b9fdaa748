"""watch.events in -> user state (stored with its offsets); videos.embedded in -> catalogue."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition

from services.recommender import metrics
from services.recommender.core.catalogue import VideoInfo
from services.recommender.engine import Recommender
from shared import topics
from shared.codec import decode
from shared.events import VideoEmbedded, WatchEvent
from shared.replay import read_to_end
from shared.runtime.heap import settle_heap

log = logging.getLogger(__name__)
BATCH_END_WAIT_S = 30.0


class Handlers:
    """The state held in memory knows the offset it reflects (its position). A record is folded in
    only when it is exactly at that position: an earlier one is already in the state (a redelivery),
    a later one means the fetch position is not where the state is (a seek that did not take, a
    batch fetched before a rebalance), and the consumer is sent back to the state's position. So
    the stored state and its offset stay exact whatever the fetch positions do."""

    def __init__(self, recommender: Recommender, flush_interval_s: float = 0.25,
                 subscriber_ref: dict | None = None) -> None:
        self.rec = recommender
        self.subscriber_ref = subscriber_ref if subscriber_ref is not None else {}
        self.flush_interval_s = flush_interval_s
        self.dirty: set[int] = set()  # partitions whose position moved since their last stored snapshot
        self.flushed_at = 0.0
        self.in_batch = False  # state is stored only between batches, never half way through one
        self.between_batches = asyncio.Event()
        self.between_batches.set()
        self.writer: asyncio.Task | None = None  # the state write in progress, one at a time
        self.sent_back: set[int] = set()  # partitions sent back to their position during this batch
        self.skipped_logged: set[str] = set()  # reasons a videos.embedded event was skipped for, logged once each

    @property
    def consumer(self):
        return getattr(self.subscriber_ref.get("subscriber"), "consumer", None)

    async def on_watch_events(self, event: WatchEvent, record: Any) -> None:
        """Called only for a record at the state's position (``admit``); ``settled`` then moves it."""
        applied = self.rec.apply(event, record.partition)
        metrics.events.labels("duplicate" if applied.duplicate else "applied").inc()
        if not applied.video_known:
            metrics.unknown_videos.inc()
        metrics.freshness.observe(max(0.0, time.time() - event.ts.timestamp()))

    async def admit(self, record: Any) -> bool:
        """Before a record is decoded: whether it is the next one the partition's state needs (see the
        class note). A batch is open from its first record until ``after_watch_batch``."""
        self.in_batch = True
        self.between_batches.clear()
        return await self.in_position(record)

    def settled(self, record: Any) -> None:
        """A record at the position is done, applied or dead-lettered: the position moves past it."""
        self.rec.advance(record.partition, record.offset + 1)
        self.dirty.add(record.partition)

    async def own_position(self, tp: TopicPartition) -> int | None:
        """The position the log-end watch compares with the partition's end (the state's own)."""
        return self.rec.position(tp.partition)

    def restarted(self, tp: TopicPartition, start: int) -> None:
        """The broker lost its log: the state is kept and folds in the new log from ``start``."""
        if self.rec.position(tp.partition) is not None:
            self.rec.advance(tp.partition, start)
            self.dirty.add(tp.partition)

    async def in_position(self, record: Any) -> bool:
        """Whether ``record`` is the next one the partition's state needs (see the class note)."""
        partition = record.partition
        expected = self.rec.position(partition)
        if expected is None:  # not loaded here: a record fetched before a rebalance, or a failed assignment
            metrics.events.labels("not_owned").inc()
            tp = TopicPartition(record.topic, partition)
            consumer = self.consumer
            if consumer is not None and tp in consumer.assignment() and partition not in self.sent_back:
                self.sent_back.add(partition)
                await resume(self.rec, consumer, tp)
            return False
        if record.offset < expected:
            metrics.events.labels("already_applied").inc()
            return False
        if record.offset > expected:
            metrics.events.labels("out_of_position").inc()
            consumer = self.consumer
            if consumer is not None and partition not in self.sent_back:
                self.sent_back.add(partition)
                log.warning("%s[%d]: fetched offset %d but the state is at %d; seeking back", record.topic,
                            partition, record.offset, expected)
                consumer.seek(TopicPartition(record.topic, partition), expected)
            return False
        return True

    async def after_watch_batch(self, records: list[Any]) -> None:
        """Store state with its offsets, at most every ``flush_interval_s`` (a crash replays the rest)."""
        self.sent_back.clear()
        self.in_batch = False
        self.between_batches.set()
        self.report_lag()
        if time.monotonic() - self.flushed_at >= self.flush_interval_s:
            self.flush_soon()
        metrics.users.set(len(self.rec.user_partition))

    async def flush_when_idle(self) -> None:
        """Background task: store what a quiet stream left unstored."""
        while True:
            await asyncio.sleep(self.flush_interval_s or 0.25)
            if self.dirty and not self.in_batch:
                await self.flush()

    def report_lag(self) -> None:
        """Messages behind the partition's end, from the high watermark the last fetch reported."""
        consumer = self.consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            done = self.rec.position(tp.partition)
            if high is not None and done is not None:
                metrics.lag.labels(str(tp.partition)).set(max(0, high - done))

    def _snapshot(self, partitions: list[int] | None) -> list:
        writes = []
        for partition in list(partitions if partitions is not None else self.dirty):
            if partition not in self.dirty:
                continue
            self.dirty.discard(partition)
            if self.rec.position(partition) is not None:  # else revoked since: its new owner has it
                writes.append(self.rec.snapshot(partition))
        self.flushed_at = time.monotonic()
        return writes

    def _writing(self) -> bool:
        return self.writer is not None and not self.writer.done()

    def flush_soon(self) -> None:
        """Snapshot now, between batches (consistent), and write in a thread while the consumer goes on
        fetching and applying; skipped while the previous write runs (its successor takes both)."""
        if self._writing():
            return
        writes = self._snapshot(None)
        if writes:
            self._start_write(writes)

    async def flush(self, partitions: list[int] | None = None) -> None:
        """Store what is unstored now and wait for it (before partitions move, at shutdown)."""
        while self._writing():
            await asyncio.wait([self.writer])
        writes = self._snapshot(partitions)
        if writes:
            await self._start_write(writes)

    def _start_write(self, snapshots: list) -> asyncio.Task:
        """The one writer: snapshots go to disk in a thread; a failure is counted and logged."""
        self.writer = asyncio.create_task(asyncio.to_thread(self._write, snapshots))
        self.writer.add_done_callback(_report_write)
        return self.writer

    def _write(self, snapshots: list) -> None:
        for i, snap in enumerate(snapshots):
            try:
                snap.write()
            except BaseException:
                for failed in snapshots[i:]:  # nothing of these reached the disk: store them next time
                    failed.restore()
                    self.dirty.add(failed.partition)
                raise

    async def load_catalogue(self, bootstrap: str) -> int:
        """Read videos.embedded to its current end into the catalogue; bad records are skipped here
        (the live subscriber dead-letters them). Returns the number of videos in the catalogue."""
        async for value in read_to_end(bootstrap, topics.VIDEOS_EMBEDDED.name):
            event = decode(value, VideoEmbedded, 1 << 24)
            if isinstance(event, VideoEmbedded):
                await self.on_videos_embedded(event)
        return len(self.rec.catalogue)

    async def on_videos_embedded(self, event: VideoEmbedded) -> None:
        """Into the catalogue, with its search vector (an empty one removes the video from search); an
        embedding by another model version, or of another size than the stores', is counted and skipped
        (the stores stay as they are)."""
        catalogue = self.rec.catalogue
        reason = catalogue.refusal(event.model_version, event.vector, event.search_vector)
        if reason is not None:
            metrics.embeddings_skipped.labels(reason).inc()
            if reason not in self.skipped_logged:  # once per reason; the counter has every one
                self.skipped_logged.add(reason)
                log.warning("%s: skipped %s (%s: model %s, %d + %d dimensions; this catalogue holds %s, %d + %s); "
                            "further ones are counted in clipstream_recommender_embeddings_skipped_total",
                            topics.VIDEOS_EMBEDDED.name, event.video_id, reason, event.model_version,
                            len(event.vector), len(event.search_vector), catalogue.model_version or "any model",
                            catalogue.store.dim, getattr(catalogue.search_store, "dim", "no search"))
            return
        info = VideoInfo(event.video_id, event.topic, event.creator_id, event.created_at.timestamp(),
                         event.duplicate_of, event.title, tuple(c.name for c in event.concepts))
        catalogue.add(info, event.vector, event.search_vector)
        metrics.videos.set(len(catalogue))


def _report_write(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:  # changes stay pending for the next flush
        metrics.state_write_failures.inc()
        log.error("storing recommender state failed; retrying at the next flush", exc_info=task.exception())


class ResumeFromStoredOffsets(ConsumerRebalanceListener):
    """On assignment, load each partition's state and seek to the offset stored with it."""

    def __init__(self, handlers: Handlers) -> None:
        self.handlers = handlers
        self.rec = handlers.rec

    async def on_partitions_revoked(self, revoked) -> None:
        # the group coordinator runs beside the batch handler: let the batch in hand finish (and move
        # the positions) before storing and dropping the partitions it touches
        try:
            await asyncio.wait_for(self.handlers.between_batches.wait(), BATCH_END_WAIT_S)
        except TimeoutError:  # a batch that failed half way (its dead letter unwritable) never ends
            log.warning("batch still open after %.0f s; storing partitions %s without it", BATCH_END_WAIT_S,
                        [tp.partition for tp in revoked])
        await self.handlers.flush([tp.partition for tp in revoked])  # the next owner resumes where this one stopped
        for tp in revoked:
            self.rec.revoke(tp.partition)

    async def on_partitions_assigned(self, assigned) -> None:
        consumer = self.handlers.consumer
        for tp in assigned:
            if consumer is None:
                self.rec.assign(tp.partition)
            else:
                await resume(self.rec, consumer, tp)
        settle_heap()  # the loaded state is long-lived: keep it out of every later full collection


async def resume(rec: Recommender, consumer: Any, tp: TopicPartition) -> None:
    """Load a partition's state and seek to the offset stored with it; a partition never stored starts
    at the log's first offset (the group's committed offset may be ahead of the state)."""
    if rec.assign(tp.partition) is None:
        start = (await consumer.beginning_offsets([tp]))[tp]
        if rec.position(tp.partition) is None:  # the handler may have resumed it meanwhile
            rec.advance(tp.partition, start)
    consumer.seek(tp, rec.position(tp.partition))
