"""Notices a consumer whose position lies past its partition's end, and starts it at the log's beginning.

That happens when a broker comes back without its log (memory storage, a lost volume, a topic
deleted and re-created): the consumer goes on fetching at its old offset, the new log has not
reached it, so it would wait, with lag 0, until the new log grew past the old position, losing
everything before. Not every broker answers OFFSET_OUT_OF_RANGE (the embedded Tansu does not), so
the watch compares each position with the high watermark the last fetch response reported. When
the position is past it on two checks in a row, the watch counts it
(``clipstream_<service>_log_truncations_total{topic}``), logs one ERROR, and seeks the partition
to the log's first offset. The rule: state is kept, consuming starts again at the new log's
beginning; idempotency keys (event ids, video ids, request ids) absorb what is delivered twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from shared.metrics import counter

log = logging.getLogger(__name__)

Position = Callable[[TopicPartition], Awaitable[int | None]]
Restart = Callable[[TopicPartition, int], None]


@dataclass
class Watched:
    subscriber: Any  # a FastStream Kafka subscriber; its aiokafka consumer exists once the broker runs
    topic: str
    service: str
    position: Position | None = None  # the service's own position (default: the consumer's fetch position)
    restarted: Restart | None = None  # told the new start, to move the service's own position too
    suspect: set[TopicPartition] = field(default_factory=set)


# the subscribers ``consume`` registered, keyed by the broker itself (an id could be reused by a later one)
_WATCHED: dict[Any, list[Watched]] = {}


def watch(broker: Any, item: Watched) -> None:
    _WATCHED.setdefault(broker, []).append(item)


def truncations(service: str):
    return counter(service, "log_truncations",
                   "Times a consumer found its position past its partition's end (a broker that lost its log) "
                   "and started again at the log's first offset, by topic.", ("topic",))


def past_the_end(position: int | None, highwater: int | None) -> bool:
    """A position past the end the broker last reported (both known)."""
    return position is not None and highwater is not None and position > highwater


async def check(item: Watched) -> None:
    """One look at every assigned partition of one subscriber."""
    consumer = getattr(item.subscriber, "consumer", None)
    if consumer is None:
        return
    for tp in list(consumer.assignment()):
        position = await (item.position(tp) if item.position else _fetch_position(consumer, tp))
        if not past_the_end(position, consumer.highwater(tp)):
            item.suspect.discard(tp)
            continue
        if tp not in item.suspect:  # once may be a fetch in flight: act on the second look
            item.suspect.add(tp)
            continue
        item.suspect.discard(tp)
        start = (await consumer.beginning_offsets([tp]))[tp]
        truncations(item.service).labels(item.topic).inc()
        log.error("%s[%d]: position %s is past the log's end %s (the broker lost its log?); "
                  "starting again at offset %d, state kept", tp.topic, tp.partition, position,
                  consumer.highwater(tp), start)
        if item.restarted is not None:
            item.restarted(tp, start)
        consumer.seek(tp, start)


async def _fetch_position(consumer: Any, tp: TopicPartition) -> int | None:
    try:
        return await asyncio.wait_for(consumer.position(tp), 1.0)
    except Exception:  # not assigned any more, or no position yet: nothing to compare
        return None


async def run(broker: Any, interval_s: float = 1.0) -> None:
    """Background task of a service: check every subscriber ``consume`` registered on ``broker``."""
    while True:
        await asyncio.sleep(interval_s)
        for item in list(_WATCHED.get(broker, [])):
            try:
                await check(item)
            except Exception:  # the watch must never take the service down
                log.warning("log-end check of %s failed", item.topic, exc_info=True)


@asynccontextmanager
async def running(broker: Any, interval_s: float = 1.0) -> AsyncIterator[None]:
    """``async with running(broker):`` keeps the watch going for the block (a service's lifespan)."""
    task = asyncio.create_task(run(broker, interval_s))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
