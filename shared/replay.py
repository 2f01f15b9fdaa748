"""Reading a topic from the beginning (or given offsets) to its current end, and following it after.

Used to rebuild a view before serving (the catalogue, a partition's state from its changelog) and to keep
it current afterwards (the catalogue, the other replicas' statistics, partition owners) with one read of
the topic: :class:`Tail` reads to the end, says so (``caught_up``), and goes on with what arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

IDLE_MS = 300


async def _ended(consumer: AIOKafkaConsumer, tp: TopicPartition, got: dict, end: int) -> bool:
    """The end of ``tp`` (see :class:`Tail`): the fetch ``got`` brought nothing of it and its position has
    reached the end offset reported before reading."""
    return not got.get(tp) and await consumer.position(tp) >= end


class Tail:
    """One consumer without a group, assigned ``partitions`` of ``topic`` (all by default), starting at
    ``start`` (partition -> offset; the beginning for the others).

    The end is where a partition has reached its reported end offset *and* a fetch comes back empty: the
    embedded broker (Tansu 0.6) can under-report end offsets after batched produces, so the reported
    offset alone would stop short.
    """

    def __init__(self, bootstrap: str, topic: str, partitions: Iterable[int] | None = None,
                 start: dict[int, int] | None = None, idle_ms: int = IDLE_MS, **consumer_options: Any) -> None:
        self.topic = topic
        self.wanted = None if partitions is None else sorted(partitions)
        self.start_at = dict(start or {})
        self.idle_ms = idle_ms
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                         fetch_max_wait_ms=idle_ms, **consumer_options)
        self.parts: list[TopicPartition] = []
        self.caught_up = asyncio.Event()
        self.next: dict[int, int] = dict(self.start_at)  # partition -> the offset after the last record read

    async def __aenter__(self) -> Tail:
        try:
            await self.consumer.start()
            known = self.consumer.partitions_for_topic(self.topic) or set()
            if not known:  # a topic created after the client's first metadata request
                await self.consumer._client.force_metadata_update()
                known = self.consumer.partitions_for_topic(self.topic) or set()
            chosen = sorted(known) if self.wanted is None else [p for p in self.wanted if p in known]
            self.parts = [TopicPartition(self.topic, p) for p in chosen]
            if self.parts:
                self.consumer.assign(self.parts)
                for tp in self.parts:
                    if tp.partition in self.start_at:
                        self.consumer.seek(tp, self.start_at[tp.partition])
                    else:
                        await self.consumer.seek_to_beginning(tp)
        except BaseException:
            await self.consumer.stop()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()

    async def batches(self, batch: int = 1000, follow: bool = True) -> AsyncIterator[list[Any]]:
        """Lists of records (aiokafka ``ConsumerRecord``), in order per partition; an empty list once, when
        every partition has reached its end (``caught_up`` is then set); after it, only if ``follow``."""
        if not self.parts:
            self.caught_up.set()
            yield []
            return
        ends = await self.consumer.end_offsets(self.parts)
        remaining = set(self.parts)
        while True:
            got = await self.consumer.getmany(timeout_ms=self.idle_ms, max_records=batch)
            rows = [r for tp in sorted(got, key=lambda t: t.partition) for r in got[tp]]
            for r in rows:
                self.next[r.partition] = r.offset + 1
            if rows:
                yield rows
            if remaining:
                for tp in list(remaining):
                    if await _ended(self.consumer, tp, got, ends[tp]):
                        remaining.discard(tp)
                if not remaining:
                    self.caught_up.set()
                    yield []
                    if not follow:
                        return

    def lag(self) -> dict[int, int]:
        """Messages behind each partition's end, from the high watermark the last fetch reported (0 before it)."""
        out = {}
        for tp in self.parts:
            high = self.consumer.highwater(tp)
            out[tp.partition] = 0 if high is None else max(0, high - self.next.get(tp.partition, 0))
        return out


async def read_partition(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, idle_ms: int = IDLE_MS,
                         batch: int = 5000) -> list[Any]:
    """Every record of ``tp`` from ``start`` to its end, with a started consumer that is not in a group (it is
    assigned ``tp`` alone). The end: the reported end offset reached *and* a fetch that comes back empty."""
    consumer.assign([tp])
    consumer.seek(tp, start)
    end = (await consumer.end_offsets([tp]))[tp]
    out: list[Any] = []
    while True:
        got = await consumer.getmany(tp, timeout_ms=idle_ms, max_records=batch)
        out += got.get(tp, [])
        if await _ended(consumer, tp, got, end):
            return out


async def records_to_end(bootstrap: str, topic: str, batch: int = 1000) -> AsyncIterator[Any]:
    """Every record (aiokafka ``ConsumerRecord``: key, value, headers, partition, offset) of ``topic``
    up to its end, in partition order."""
    async with Tail(bootstrap, topic) as tail:
        async for rows in tail.batches(batch, follow=False):
            for r in rows:
                yield r


async def read_to_end(bootstrap: str, topic: str, batch: int = 1000) -> AsyncIterator[bytes | None]:
    """Every message value of ``topic`` up to its end, in partition order (see :class:`Tail`)."""
    async for record in records_to_end(bootstrap, topic, batch):
        yield record.value
