"""Publishing events to their registry topic, keyed as the registry says.

Each topic carries one event class (``Topic.event``); an event of another type is refused with a
``TypeError`` (:class:`WrongEventType`) before anything is sent, so a wrong topic is a bug found at
once, not a stream of dead letters at every consumer."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence

from faststream.kafka import KafkaBroker

from shared.codec import encode, message_key
from shared.events import Event
from shared.metrics import published_counter
from shared.topics import Topic


class WrongEventType(TypeError):
    """An event published to a topic that carries another event class (a bug in the caller)."""


def check_type(topic: Topic, event: object) -> None:
    """Raise :class:`WrongEventType` unless ``event`` is an instance of the topic's event class."""
    if not isinstance(event, topic.event):
        raise WrongEventType(f"{topic.name} carries {topic.event.__name__} events, not {type(event).__name__}: "
                        "publish it to the topic of its type")


async def publish(broker: KafkaBroker, topic: Topic, event: Event, service: str) -> None:
    check_type(topic, event)
    await broker.publish(encode(event), topic=topic.name, key=message_key(topic, event),
                         headers={"content-type": "application/json"})
    published_counter(service).labels(topic.name).inc()


async def publish_many(broker: KafkaBroker, topic: Topic, events: Sequence[Event], service: str) -> None:
    """Send all, then wait for every acknowledgement: one round trip's latency, not N.

    Every event's type is checked first: a mismatch anywhere sends none of them."""
    for e in events:
        check_type(topic, e)
    pending = [
        await broker.publish(encode(e), topic=topic.name, key=message_key(topic, e), no_confirm=True,
                             headers={"content-type": "application/json"})
        for e in events
    ]
    # real producers hand back delivery futures; FastStream's in-memory test broker delivers at once
    await asyncio.gather(*(p for p in pending if inspect.isawaitable(p)))
    published_counter(service).labels(topic.name).inc(len(events))
