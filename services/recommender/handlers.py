"""watch.events in -> user state (stored with its offsets); videos.embedded in -> catalogue."""

from __future__ import annotations

import asyncio
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


class Handlers:
    def __init__(self, recommender: Recommender, flush_interval_s: float = 0.25,
                 subscriber_ref: dict | None = None) -> None:
        self.rec = recommender
        self.subscriber_ref = subscriber_ref if subscriber_ref is not None else {}
        self.flush_interval_s = flush_interval_s
        self.pending: dict[int, int] = {}  # partition -> next offset not yet stored
        self.flushed_at = 0.0
        self.in_batch = False  # state is stored only between batches, never half way through one
        self.write_lock = asyncio.Lock()

    async def on_watch_events(self, event: WatchEvent, record: Any) -> None:
        self.in_batch = True
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
        self.report_lag(records)
        if time.monotonic() - self.flushed_at >= self.flush_interval_s:
            await self.flush()
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

    async def flush(self, partitions: list[int] | None = None) -> None:
        """Snapshot state and offsets on the event loop (consistent), write them in a thread (the loop
        keeps applying events meanwhile); one write at a time."""
        async with self.write_lock:
            writes = []
            for partition in list(partitions if partitions is not None else self.pending):
                offset = self.pending.pop(partition, None)
                if offset is not None and partition in self.rec.partitions:
                    writes.append(self.rec.snapshot(partition, offset))
            self.flushed_at = time.monotonic()
            if writes:
                await asyncio.to_thread(self._write, writes)

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


class ResumeFromStoredOffsets(ConsumerRebalanceListener):
    """On assignment, load each partition's state and seek to the offset stored with it."""

    def __init__(self, handlers: Handlers, topic: str, subscriber_ref: dict) -> None:
        self.handlers = handlers
        self.rec = handlers.rec
        self.topic = topic
        self.ref = subscriber_ref

    async def on_partitions_revoked(self, revoked) -> None:
        await self.handlers.flush([tp.partition for tp in revoked])  # the next owner resumes where this one stopped
        for tp in revoked:
            self.rec.revoke(tp.partition)

    async def on_partitions_assigned(self, assigned) -> None:
        consumer = self.ref["subscriber"].consumer
        for tp in assigned:
            offset = self.rec.assign(tp.partition)
            if offset is not None and consumer is not None:
                consumer.seek(tp, offset)
