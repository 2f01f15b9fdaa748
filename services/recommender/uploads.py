"""Unpublished uploads analysed for creator insights: ``insights.completed`` read by every replica (no group,
like the catalogue) into a bounded book, so that a poll can be answered by any replica, each for the
partitions it serves. A record that fails to decode is dead-lettered; the newest ``limit`` results are kept."""

from __future__ import annotations

from collections import OrderedDict
from aiokafka import AIOKafkaProducer

from services.recommender import metrics
from services.recommender.handlers import dead_letter
from shared.codec import Rejection, decode
from shared.events import InsightsCompleted
from shared.replay import Tail


class Uploads:
    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self.done: OrderedDict[str, InsightsCompleted] = OrderedDict()

    def add(self, event: InsightsCompleted) -> None:
        self.done[event.request_id] = event
        self.done.move_to_end(event.request_id)
        while len(self.done) > self.limit:
            self.done.popitem(last=False)

    def get(self, request_id: str) -> InsightsCompleted | None:
        return self.done.get(request_id)


async def follow(tail: Tail, uploads: Uploads, producer: AIOKafkaProducer, max_bytes: int) -> None:
    """Read ``insights.completed`` into ``uploads`` for as long as the replica runs."""
    async for records in tail.batches():
        for record in records:
            event = decode(record.value, InsightsCompleted, max_bytes)
            if isinstance(event, Rejection):
                await dead_letter(producer, record, event, max_bytes)
                continue
            uploads.add(event)
        metrics.uploads_known.set(len(uploads.done))
