"""Publishing events to their registry topic, keyed as the registry says."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence

from faststream.kafka import KafkaBroker

from shared.codec import encode, message_key
from shared.events import Event
from shared.metrics import published_counter
from shared.topics import Topic


async def publish(broker: KafkaBroker, topic: Topic, event: Event, service: str) -> None:
    await broker.publish(encode(event), topic=topic.name, key=message_key(topic, event),
                         headers={"content-type": "application/json"})
    published_counter(service).labels(topic.name).inc()


async def publish_many(broker: KafkaBroker, topic: Topic, events: Sequence[Event], service: str) -> None:
    """Send all, then wait for every acknowledgement: one round trip's latency, not N."""
    pending = [
        await broker.publish(encode(e), topic=topic.name, key=message_key(topic, e), no_confirm=True,
                             headers={"content-type": "application/json"})
        for e in events
    ]
    # real producers hand back delivery futures; FastStream's in-memory test broker delivers at once
    await asyncio.gather(*(p for p in pending if inspect.isawaitable(p)))
    published_counter(service).labels(topic.name).inc(len(events))
