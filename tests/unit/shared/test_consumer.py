"""The dead-letter mechanism, wired through FastStream's in-memory TestKafkaBroker."""

import base64
import json

import pytest
from faststream.kafka import TestKafkaBroker

from shared import topics
from shared.bus import make_broker
from shared.consumer import Reject, consume
from shared.events import DeadLetterReason, WatchEvent
from shared.metrics import consumer_metrics
from shared.settings import KafkaSettings

GOOD = {"schema_version": 1, "user_id": "u1", "video_id": "v1", "action": "like"}


def counted(service: str, topic: str, outcome: str) -> float:
    return consumer_metrics(service).messages.labels(topic, outcome)._value.get()


@pytest.fixture
def setup():
    settings = KafkaSettings(max_message_bytes=4096)
    broker = make_broker("unit", settings)
    seen: list[WatchEvent] = []
    letters: list[dict] = []

    async def handler(event: WatchEvent) -> None:
        if event.video_id == "boom":
            raise RuntimeError("model exploded")
        if event.video_id == "refused":
            raise Reject("video refused: unsafe source")
        seen.append(event)

    consume(broker, topics.WATCH_EVENTS, handler, service="unit", group_id="unit", settings=settings)

    @broker.subscriber(topics.WATCH_EVENTS.dlq)
    async def on_dlq(body: dict) -> None:
        letters.append(body)

    return broker, seen, letters


async def test_good_and_bad_messages(setup):
    broker, seen, letters = setup
    ok_before = counted("unit", "watch.events", "ok")
    async with TestKafkaBroker(broker) as br:
        bad = [b"{oops", json.dumps({**GOOD, "schema_version": 7}).encode(),
               json.dumps({k: v for k, v in GOOD.items() if k != "user_id"}).encode(),
               json.dumps({**GOOD, "pad": "x" * 10000}).encode(),
               json.dumps({**GOOD, "video_id": "boom"}).encode(),
               json.dumps({**GOOD, "video_id": "refused"}).encode()]
        await br.publish(json.dumps(GOOD).encode(), topic="watch.events", key=b"u1")
        for raw in bad:
            await br.publish(raw, topic="watch.events", key=b"u1")
        await br.publish(json.dumps({**GOOD, "video_id": "v2"}).encode(), topic="watch.events", key=b"u1")
    assert [e.video_id for e in seen] == ["v1", "v2"], "bad messages in between must not stop the consumer"
    assert [l["reason"] for l in letters] == [
        DeadLetterReason.MALFORMED_JSON, DeadLetterReason.UNKNOWN_SCHEMA_VERSION, DeadLetterReason.INVALID_EVENT,
        DeadLetterReason.OVERSIZED, DeadLetterReason.PROCESSING_ERROR, DeadLetterReason.REJECTED]
    first = letters[0]
    assert base64.b64decode(first["payload_b64"]) == b"{oops"
    assert first["source_topic"] == "watch.events" and first["service"] == "unit" and first["key"] == "u1"
    assert "user_id" in letters[2]["detail"]
    assert "model exploded" in letters[4]["detail"]
    oversized = letters[3]
    assert oversized["payload_size"] > 10000 and len(base64.b64decode(oversized["payload_b64"])) == 4096
    assert counted("unit", "watch.events", "ok") - ok_before == 2
    assert consumer_metrics("unit").dead_letters.labels("watch.events", "oversized")._value.get() >= 1


async def test_subscriber_is_named_for_its_topic(setup):
    broker, _, _ = setup
    from faststream.specification import AsyncAPI

    channels = AsyncAPI(broker).to_specification().to_jsonable()["channels"]
    assert "watch.events:OnWatchEvents" in channels


def test_every_dead_letter_series_exists_at_zero_before_the_first_letter():
    from prometheus_client import REGISTRY

    consume(make_broker("unit-zero", KafkaSettings()), topics.VIDEOS_UPLOADED, lambda e: None,
            service="unitzero", group_id="unit-zero", settings=KafkaSettings())
    for reason in DeadLetterReason:
        value = REGISTRY.get_sample_value("clipstream_unitzero_dlq_messages_total",
                                          {"topic": topics.VIDEOS_UPLOADED.name, "reason": reason.value})
        assert value == 0.0, reason
    assert REGISTRY.get_sample_value("clipstream_unitzero_messages_total",
                                     {"topic": topics.VIDEOS_UPLOADED.name, "outcome": "dead_lettered"}) == 0.0


def test_a_consumer_with_its_own_positions_commits_in_the_background_and_others_after_each_batch():
    """A service that keeps its positions with its state (``admit``) never waits for the group's commit after a
    batch (aiokafka commits in the background); every other consumer commits a batch once it is handled."""
    from faststream import AckPolicy

    settings = KafkaSettings()
    broker = make_broker("unit", settings)

    async def handler(event, record) -> None:
        pass

    async def admit(record) -> bool:
        return True

    own = consume(broker, topics.WATCH_EVENTS, handler, service="unit", group_id="a", settings=settings,
                  with_record=True, admit=admit, settled=lambda record: None)
    plain = consume(broker, topics.VIDEOS_EMBEDDED, handler, service="unit", group_id="b", settings=settings,
                    with_record=True)
    assert own.ack_policy is AckPolicy.ACK_FIRST
    assert plain.ack_policy is AckPolicy.NACK_ON_ERROR


async def test_a_failed_batch_of_a_consumer_with_its_own_positions_is_fetched_again_from_its_start(monkeypatch):
    """Nothing was committed for such a batch (module note), so a failure the consumer cannot dead-letter sends
    the consumer back to the batch's first record of each partition, as FastStream's nack does for the others."""
    from faststream.kafka import message

    seeks: list[tuple] = []
    monkeypatch.setattr(message.FAKE_CONSUMER, "seek", lambda partition, offset: seeks.append((partition, offset)))
    settings = KafkaSettings()
    broker = make_broker("unit", settings)

    async def handler(event, record) -> None:
        pass

    async def admit(record) -> bool:
        if json.loads(record.value)["video_id"] == "down":
            raise ConnectionError("the dead-letter topic is unreachable")
        return True

    consume(broker, topics.WATCH_EVENTS, handler, service="unit", group_id="own", settings=settings,
            with_record=True, admit=admit, settled=lambda record: None)
    async with TestKafkaBroker(broker) as br:
        with pytest.raises(ConnectionError):
            await br.publish(json.dumps({**GOOD, "video_id": "down"}).encode(), topic="watch.events", key=b"u1")
        await br.publish(json.dumps(GOOD).encode(), topic="watch.events", key=b"u1")
    assert len(seeks) == 1
    tp, offset = seeks[0]
    assert (tp.topic, tp.partition) == ("watch.events", 0) and offset == 0


def test_batch_starts_are_each_partitions_first_offset():
    from types import SimpleNamespace

    from shared.consumer import batch_starts

    records = [SimpleNamespace(topic="t", partition=p, offset=o) for p, o in ((1, 7), (0, 3), (1, 5), (0, 4))]
    assert {(tp.partition, off) for tp, off in batch_starts(records).items()} == {(0, 3), (1, 5)}
