"""Reading a topic from the beginning to its current end (rebuilding a view before serving)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_to_end(bootstrap: str, topic: str, batch: int = 1000) -> AsyncIterator[bytes | None]:
    """Every message value of ``topic`` up to the end offsets seen when this starts, in partition order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not parts:
            return
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        remaining = {tp for tp in parts if ends[tp] > 0}
        while remaining:
            records = await consumer.getmany(*remaining, timeout_ms=1000, max_records=batch)
            for tp, rows in records.items():
                for r in rows:
                    if r.offset < ends[tp]:
                        yield r.value
                if rows and rows[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
