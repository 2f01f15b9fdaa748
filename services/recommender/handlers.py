"""watch.events in -> user state (stored with its offsets); videos.embedded in -> catalogue."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import ConsumerRebalanceListener

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
    def __init__(self, recommender: Recommender, flush_interval_s: float = 0.25,
                 subscriber_ref: dict | None = None) -> None:
        self.rec = recommender
        self.subscriber_ref = subscriber_ref if subscriber_ref is not None else {}
        self.flush_interval_s = flush_interval_s
        self.pending: dict[int, int] = {}  # partition -> next offset not yet stored
        self.flushed_at = 0.0
        self.in_batch = False  # state is stored only between batches, never half way through one
        self.between_batches = asyncio.Event()
        self.between_batches.set()
        self.writer: asyncio.Task | None = None  # the state write in progress, one at a time

    async def on_watch_events(self, event: WatchEvent, record: Any) -> None:
        self.in_batch = True
        self.between_batches.clear()
        applied = self.rec.apply(event, record.partition)
        metrics.events.labels("duplicate" if applied.duplicate else "applied").inc()
        if not applied.video_known:
            metrics.unknown_videos.inc()
        metrics.freshness.observe(max(0.0, time.time() - event.ts.timestamp()))

    async def after_watch_batch(self, records: list[Any]) -> None:
        """Store state with its offsets, at most every ``flush_interval_s`` (a crash replays the rest)."""
        for r in records:
            self.pending[r.partition] = max(self.pending.get(r.partition, 0), r.offset + 1)
        self.in_batch = False
        self.between_batches.set()
        self.report_lag(records)
        if time.monotonic() - self.flushed_at >= self.flush_interval_s:
            self.flush_soon()
        metrics.users.set(len(self.rec.user_partition))

    async def flush_when_idle(self) -> None:
        """Background task: store what a quiet stream left pending."""
        while True:
            await asyncio.sleep(self.flush_interval_s or 0.25)
            if self.pending and not self.in_batch:
                await self.flush()

    def report_lag(self, records: list[Any]) -> None:
        """Messages behind the partition's end, from the high watermark the last fetch reported."""
        subscriber = self.subscriber_ref.get("subscriber")
        consumer = getattr(subscriber, "consumer", None)
        if consumer is None:
            return
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            done = self.pending.get(tp.partition)
            if high is not None and done is not None:
                metrics.lag.labels(str(tp.partition)).set(max(0, high - done))

    def _snapshot(self, partitions: list[int] | None) -> list:
        writes = []
        for partition in list(partitions if partitions is not None else self.pending):
            offset = self.pending.pop(partition, None)
            if offset is not None and partition in self.rec.partitions:
                writes.append(self.rec.snapshot(partition, offset))
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
        """Store what is pending now and wait for it (before partitions move, at shutdown)."""
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
                for failed in snapshots[i:]:  # nothing of these reached the disk: keep them pending
                    failed.restore()
                    self.pending[failed.partition] = max(self.pending.get(failed.partition, 0), failed.next_offset)
                raise

    async def load_catalogue(self, bootstrap: str) -> int:
        """Read videos.embedded to its current end into the catalogue; bad records are skipped here
        (the live subscriber dead-letters them)."""
        count = 0
        async for value in read_to_end(bootstrap, topics.VIDEOS_EMBEDDED.name):
            event = decode(value, VideoEmbedded, 1 << 24)
            if isinstance(event, VideoEmbedded):
                await self.on_videos_embedded(event)
                count += 1
        return count

    async def on_videos_embedded(self, event: VideoEmbedded) -> None:
        info = VideoInfo(event.video_id, event.topic, event.creator_id, event.created_at.timestamp(),
                         event.duplicate_of, event.title)
        self.rec.catalogue.add(info, event.vector)
        metrics.videos.set(len(self.rec.catalogue))


def _report_write(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:  # changes stay pending for the next flush
        metrics.state_write_failures.inc()
        log.error("storing recommender state failed; retrying at the next flush", exc_info=task.exception())


class ResumeFromStoredOffsets(ConsumerRebalanceListener):
    """On assignment, load each partition's state and seek to the offset stored with it."""

    def __init__(self, handlers: Handlers, topic: str, subscriber_ref: dict) -> None:
        self.handlers = handlers
        self.rec = handlers.rec
        self.topic = topic
        self.ref = subscriber_ref

    async def on_partitions_revoked(self, revoked) -> None:
        # the group coordinator runs beside the batch handler: let the batch in hand finish (and mark
        # its offsets pending) before storing and dropping the partitions it touches
        try:
            await asyncio.wait_for(self.handlers.between_batches.wait(), BATCH_END_WAIT_S)
        except TimeoutError:  # a batch that failed half way (its dead letter unwritable) never ends
            log.warning("batch still open after %.0f s; storing partitions %s without it", BATCH_END_WAIT_S,
                        [tp.partition for tp in revoked])
        await self.handlers.flush([tp.partition for tp in revoked])  # the next owner resumes where this one stopped
        for tp in revoked:
            self.rec.revoke(tp.partition)

    async def on_partitions_assigned(self, assigned) -> None:
        consumer = self.ref["subscriber"].consumer
        for tp in assigned:
            offset = self.rec.assign(tp.partition)
            if consumer is None:
                continue
            if offset is not None:
                consumer.seek(tp, offset)
            else:  # nothing of it stored yet: the group's committed offset may be ahead of the state
                await consumer.seek_to_beginning(tp)
        settle_heap()  # the loaded state is long-lived: keep it out of every later full collection
