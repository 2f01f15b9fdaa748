"""Reading a topic from the beginning to its current end (rebuilding a view before serving)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

IDLE_MS = 300


async def records_to_end(bootstrap: str, topic: str, batch: int = 1000) -> AsyncIterator[Any]:
    """Every record (aiokafka ``ConsumerRecord``: key, value, headers, partition, offset) of ``topic``
    up to its end, in partition order.

    The end is where a partition has reached its reported end offset *and* a fetch comes back
    empty: the embedded broker (Tansu 0.6) can under-report end offsets after batched produces,
    so the reported offset alone would stop short.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=IDLE_MS)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not parts:
            return
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        remaining = set(parts)
        while remaining:
            records = await consumer.getmany(*remaining, timeout_ms=IDLE_MS, max_records=batch)
            for tp, rows in records.items():
                for r in rows:
                    yield r
            for tp in list(remaining):
                if not records.get(tp) and await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def read_to_end(bootstrap: str, topic: str, batch: int = 1000) -> AsyncIterator[bytes | None]:
    """Every message value of ``topic`` up to its end, in partition order (see :func:`records_to_end`)."""
    async for record in records_to_end(bootstrap, topic, batch):
        yield record.value
