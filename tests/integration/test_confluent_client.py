"""Acceptance 3: a client no one here wrote (confluent-kafka, bundled librdkafka) talks to the embedded broker."""

from __future__ import annotations

import json
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from shared import topics
from shared.events import WatchEvent


def test_confluent_kafka_lists_produces_and_consumes_in_a_group(broker, group_id):
    conf = {"bootstrap.servers": broker.bootstrap}
    metadata = AdminClient(conf).list_topics(timeout=10)
    listed = set(metadata.topics)
    assert {t.name for t in topics.TOPICS} <= listed
    assert {t.dlq for t in topics.TOPICS} <= listed
    assert len(metadata.topics[topics.WATCH_EVENTS.name].partitions) == topics.WATCH_EVENTS.partitions

    sent = [WatchEvent(user_id=f"u{i}", video_id="v1", action="like") for i in range(20)]
    producer = Producer(conf)
    for event in sent:
        producer.produce(topics.WATCH_EVENTS.name, key=event.user_id, value=event.model_dump_json())
    assert producer.flush(10) == 0

    consumer = Consumer({**conf, "group.id": group_id, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000, "enable.auto.commit": False})
    consumer.subscribe([topics.WATCH_EVENTS.name])
    received = []
    deadline = time.monotonic() + 60
    try:
        while len(received) < len(sent) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            received.append((msg.key().decode(), WatchEvent.model_validate(json.loads(msg.value()))))
            consumer.commit(msg, asynchronous=False)
    finally:
        consumer.close()
    assert sorted(e.event_id for _, e in received) == sorted(e.event_id for e in sent)
    assert all(key == event.user_id for key, event in received)
