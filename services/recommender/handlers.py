"""watch.events in -> user state (stored with its offsets); videos.embedded in -> catalogue."""

from __future__ import annotations

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
    def __init__(self, recommender: Recommender) -> None:
        self.rec = recommender

    async def on_watch_events(self, event: WatchEvent, record: Any) -> None:
        applied = self.rec.apply(event, record.partition)
        metrics.events.labels("duplicate" if applied.duplicate else "applied").inc()
        if self.rec.catalogue.vector(event.video_id) is None:
            metrics.unknown_videos.inc()
        metrics.freshness.observe(max(0.0, time.time() - event.ts.timestamp()))

    async def after_watch_batch(self, records: list[Any]) -> None:
        last: dict[int, int] = {}
        for r in records:
            last[r.partition] = max(last.get(r.partition, -1), r.offset)
        for partition, offset in last.items():
            self.rec.commit(partition, offset + 1)
        metrics.users.set(len(self.rec.user_partition))

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

    def __init__(self, recommender: Recommender, topic: str, subscriber_ref: dict) -> None:
        self.rec = recommender
        self.topic = topic
        self.ref = subscriber_ref

    async def on_partitions_revoked(self, revoked) -> None:
        for tp in revoked:
            self.rec.revoke(tp.partition)

    async def on_partitions_assigned(self, assigned) -> None:
        consumer = self.ref["subscriber"].consumer
        for tp in assigned:
            offset = self.rec.assign(tp.partition)
            if offset is not None and consumer is not None:
                consumer.seek(tp, offset)
