"""``clipstream tail``: follow topics and print their events (an operator's kcat)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition


def summarize(topic: str, value: bytes | None, limit: int = 400) -> str:
    if value is None:
        return "<tombstone>"
    try:
        data = json.loads(value)
    except ValueError:
        return f"<{len(value)} bytes, not JSON>"
    if isinstance(data, dict) and "vector" in data:
        data = {**data, "vector": f"<{len(data['vector'])} floats>"}
    text = json.dumps(data, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def tail(bootstrap: str, names: Sequence[str], *, from_beginning: bool, count: int | None,
               timeout_s: float | None, emit: Callable[[str, int, int, bytes | None], None]) -> int:
    """Read ``names`` without a consumer group; stop after ``count`` messages or ``timeout_s`` idle."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    seen = 0
    try:
        parts = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or {0})]
        consumer.assign(parts)
        await (consumer.seek_to_beginning(*parts) if from_beginning else consumer.seek_to_end(*parts))
        while count is None or seen < count:
            batch = await consumer.getmany(timeout_ms=int((timeout_s or 3600) * 1000))
            if not batch:
                break
            for records in batch.values():
                for record in records:
                    emit(record.topic, record.partition, record.offset, record.value)
                    seen += 1
    finally:
        await consumer.stop()
    return seen


def run_tail(bootstrap: str, names: Sequence[str], from_beginning: bool, count: int | None, timeout_s: float | None) -> int:
    from rich.console import Console

    console = Console()

    def emit(topic: str, partition: int, offset: int, value: bytes | None) -> None:
        style = "red" if topic.endswith(".dlq") else "cyan"
        console.print(f"[{style}]{topic}[/][dim][{partition}]@{offset}[/] {summarize(topic, value)}", highlight=False,
                      soft_wrap=True)

    return asyncio.run(tail(bootstrap, names, from_beginning=from_beginning, count=count, timeout_s=timeout_s, emit=emit))
