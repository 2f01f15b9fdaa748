"""Producers give up fast (CLIPSTREAM_KAFKA_REQUEST_TIMEOUT_MS) while consumers keep aiokafka's long
request timeout: a JoinGroup may wait at the broker for a whole rebalance, longer than a publish should."""

from __future__ import annotations

import pytest

from shared import topics
from shared.bus import CONSUMER_REQUEST_TIMEOUT_MS, make_broker
from shared.settings import KafkaSettings

pytestmark = pytest.mark.integration


async def test_consumers_keep_the_long_timeout_after_connecting(broker, group_id):
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap, request_timeout_ms=2000, session_timeout_ms=6000,
                             heartbeat_interval_ms=1000)
    bus = make_broker("it-timeouts", settings)
    subscriber = bus.subscriber(topics.WATCH_EVENTS.name, group_id=group_id, session_timeout_ms=6000,
                                heartbeat_interval_ms=1000)

    @subscriber
    async def on_event(body: bytes) -> None:
        return None

    await bus.start()
    try:
        assert subscriber.consumer._client._request_timeout_ms == CONSUMER_REQUEST_TIMEOUT_MS
        producer = bus.config.broker_config.producer._producer.producer
        assert producer.client._request_timeout_ms == 2000
    finally:
        await bus.stop()
