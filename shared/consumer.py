"""The consuming side every service uses: validation, dead-lettering and metrics in one place.

A service registers ``async def handler(event) -> None`` for a topic with :func:`consume`.
Messages arrive in batches (up to ``max_poll_records``) and are handled one by one, in order.
Every message is decoded against the topic's model; a message that fails to decode, or
whose handler raises, is published to ``<topic>.dlq`` as a :class:`DeadLetter` with the
original bytes, the reason and its source partition/offset, and the consumer goes on.
Offsets are committed once the whole batch is handled (at-least-once). Only when a dead
letter itself cannot be written is the batch left uncommitted and redelivered, so nothing
is lost; handlers must therefore be idempotent.

A service that keeps its own position per partition (the recommender stores it with its state)
passes ``admit``, asked before each record is decoded (False: skip it, it is already in the state
or not where the state is), and ``settled``, told after each admitted record is done, applied or
dead-lettered alike: so a dead letter moves the position exactly as an applied record does, in
order, and the valid records after it are applied. Such a service does not wait for the group's
commit after each batch: its position is its own (``admit`` seeks back to it whenever a fetch is
elsewhere, after a restart; a batch that fails is fetched again from its start, as a nack would),
so the group's offsets are a bookmark that aiokafka commits in the background (every 5 s, and
before partitions move), and the batch ends with one turn of the event loop instead. Awaiting that
commit after every batch halved the recommender's events per second through the embedded broker.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiokafka import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared import log_end
from shared.codec import Rejection, decode, encode
from shared.events import DeadLetter, DeadLetterReason, Event
from shared.metrics import consumer_metrics
from shared.settings import KafkaSettings
from shared.topics import DLQ_SUFFIX, Topic

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
Handler = Callable[[E], Awaitable[None]]


class Reject(Exception):
    """Raised by a handler for input it refuses (unsafe path, unknown topic...): dead-lettered as ``rejected``."""


def dead_letter_for(raw: bytes | None, key: bytes | None, topic: str, partition: int, offset: int,
                    rejection: Rejection, service: str, max_payload: int) -> DeadLetter:
    payload = raw or b""
    return DeadLetter(
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", "replace") if key is not None else None,
        payload_b64=base64.b64encode(payload[:max_payload]).decode(),
        payload_size=len(payload),
        reason=rejection.reason,
        detail=rejection.detail[:4000],
        service=service,
    )


Send = Callable[[bytes, str, bytes | None], Awaitable[Any]]
"""Publishes (value, topic, key): the service's broker or producer."""


async def send_dead_letter(send: Send, record: Any, rejection: Rejection, service: str, max_payload: int,
                           topic: str | None = None) -> None:
    """``record`` (an aiokafka record of ``topic``, default its own) to ``<topic>.dlq`` with the reason, counted
    in the service's consumer metrics and logged: one path for every consumer, grouped or not."""
    topic = topic or record.topic
    letter = dead_letter_for(record.value, record.key, topic, record.partition, record.offset, rejection, service,
                             max_payload)
    await send(encode(letter), topic + DLQ_SUFFIX, record.key)
    metrics = consumer_metrics(service)
    metrics.dead_letters.labels(topic, rejection.reason.value).inc()
    metrics.messages.labels(topic, "dead_lettered").inc()
    log.warning("dead-lettered %s[%d]@%d: %s: %s", topic, record.partition, record.offset,
                rejection.reason.value, rejection.detail)


def batch_starts(records: Iterable[Any]) -> dict[TopicPartition, int]:
    """Each partition of a batch with its first offset in it: where a failed batch is fetched again from."""
    starts: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        starts[tp] = min(starts.get(tp, record.offset), record.offset)
    return starts


async def _raw(msg: Any) -> bytes:
    return msg.body


def consume(
    broker: KafkaBroker,
    topic: Topic,
    handler: Handler[E],
    *,
    service: str,
    group_id: str,
    settings: KafkaSettings,
    concurrency: int = 1,
    with_record: bool = False,
    after_batch: Callable[[list[Any]], Awaitable[None]] | None = None,
    admit: Callable[[Any], Awaitable[bool]] | None = None,
    settled: Callable[[Any], None] | None = None,
    own_position: log_end.Position | None = None,
    restarted: log_end.Restart | None = None,
    **subscriber_options: Any,
):
    """Subscribe ``handler`` to ``topic`` with dead-lettering; returns the FastStream subscriber.

    Each message is decoded as the topic's event class (``topic.event``) before ``handler`` sees it.

    ``concurrency`` > 1 handles that many messages of a batch at once (for topics where order
    between messages does not matter, such as uploads); the batch is still committed as a whole.
    ``with_record`` passes the Kafka record (topic, partition, offset) to the handler as a second
    argument; ``after_batch`` runs with every record of the batch, dead-lettered ones included,
    before the batch is committed: a service that stores its own offsets does it there. ``admit`` and
    ``settled`` are for such a service (see the module note), and so are ``own_position`` and
    ``restarted``: the subscriber is registered with :mod:`shared.log_end`, which compares that
    position (default: the consumer's) with the partition's end and restarts a partition whose log
    was lost; the service runs the watch with ``log_end.running(broker)``.
    """
    metrics = consumer_metrics(service)
    # every series exists at 0 from the start, so rate() and alerts see the first dead letter
    for outcome in ("ok", "dead_lettered"):
        metrics.messages.labels(topic.name, outcome)
    for reason in DeadLetterReason:
        metrics.dead_letters.labels(topic.name, reason.value)
    options = dict(
        group_id=group_id,
        auto_offset_reset=settings.auto_offset_reset,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_partition_fetch_bytes=max(settings.max_message_bytes * 16, 1024 * 1024),
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        batch=True,
        max_records=settings.max_poll_records,
        batch_timeout_ms=settings.fetch_max_wait_ms,
        # a service with its own positions: committed in the background (module note); else after each batch
        ack_policy=AckPolicy.ACK_FIRST if admit is not None else AckPolicy.NACK_ON_ERROR,
        decoder=_raw,
    )
    options.update(subscriber_options)

    async def publish(value: bytes, dlq: str, key: bytes | None) -> None:
        await broker.publish(value, topic=dlq, key=key)

    async def dead_letter(record: Any, rejection: Rejection) -> None:
        await send_dead_letter(publish, record, rejection, service, settings.max_message_bytes, topic.name)

    handled_ok = metrics.messages.labels(topic.name, "ok")  # the labelled series, looked up once, not per message
    handle_seconds = metrics.handle_seconds.labels(topic.name)

    async def handle_one(body: bytes | None, record: Any) -> None:
        if admit is not None and not await admit(record):
            return
        started = time.perf_counter()
        rejection = await handle_or_reject(body, record)
        if rejection is not None:
            await dead_letter(record, rejection)  # raises only when the letter cannot be written
        else:
            handled_ok.inc()
            handle_seconds.observe(time.perf_counter() - started)
        if settled is not None:
            settled(record)

    async def handle_or_reject(body: bytes | None, record: Any) -> Rejection | None:
        try:
            event = decode(body, topic.event, settings.max_message_bytes)
        except Exception as exc:  # decode promises never to raise; if it does, the record still goes
            log.exception("decoding %s failed", topic.name)
            return Rejection(DeadLetterReason.MALFORMED_JSON, f"undecodable: {type(exc).__name__}")
        if isinstance(event, Rejection):
            return event
        try:
            await (handler(event, record) if with_record else handler(event))
        except Reject as exc:
            return Rejection(DeadLetterReason.REJECTED, str(exc))
        except Exception as exc:  # a bug or an outage in one message must not stop the consumer
            log.exception("handler for %s failed", topic.name)
            return Rejection(DeadLetterReason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
        return None

    async def on_message(bodies: list[bytes], msg: KafkaMessage) -> None:
        records = msg.raw_message
        if concurrency <= 1:
            try:
                for record in records:
                    await handle_one(record.value, record)
            except BaseException:
                if admit is not None:  # nothing was committed to undo: send the consumer back, as a nack does
                    for tp, offset in batch_starts(records).items():
                        msg.consumer.seek(tp, offset)
                raise
            if after_batch is not None:
                await after_batch(list(records))
            if admit is not None:  # no commit awaited: one loop turn, else the next fetch returns buffered
                await asyncio.sleep(0)  # records without one, and other tasks wait for the buffer to run out
            return
        gate = asyncio.Semaphore(concurrency)

        async def gated(record: Any) -> None:
            async with gate:
                await handle_one(record.value, record)

        await asyncio.gather(*(gated(r) for r in records))
        if after_batch is not None:
            await after_batch(list(records))

    on_message.__name__ = f"on_{topic.name.replace('.', '_')}"
    subscriber = broker.subscriber(topic.name, **options)
    subscriber(on_message)
    log_end.truncations(service).labels(topic.name)  # the series exists at 0 from the start
    log_end.watch(broker, log_end.Watched(subscriber, topic.name, service, own_position, restarted))
    return subscriber
