"""Integration fixtures: a real embedded broker (Tansu) per test, and services as real processes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest

from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from shared.settings import KafkaSettings

API_KEY = "integration-key"

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path):
    """A fresh memory-only broker with the registry's topics; stopped after the test."""
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as b:
        yield b


@pytest.fixture
def kafka_settings(broker) -> KafkaSettings:
    # short group timeouts so consumers join in about a second
    return KafkaSettings(bootstrap_servers=broker.bootstrap, session_timeout_ms=1000, heartbeat_interval_ms=200)


@pytest.fixture
def media_root(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    return root


@pytest.fixture
def gateway(broker, media_root, tmp_path):
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_GATEWAY_MEDIA_ROOT": str(media_root),
           "CLIPSTREAM_GATEWAY_API_KEYS": API_KEY, "CLIPSTREAM_GATEWAY_MAX_BATCH": "1000"}
    with ServiceProcess("gateway", free_port(), env=env, log_path=tmp_path / "gateway.log") as proc:
        yield proc


@pytest.fixture
def group_id() -> str:
    return f"it-{uuid.uuid4().hex[:10]}"


async def publish(bootstrap: str, topic: str, items: list, key_field: str | None = None) -> None:
    """Send events (keyed by ``key_field``) or raw bytes (unkeyed) to a topic, all acknowledged."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        futures = []
        for item in items:
            value = item if isinstance(item, bytes) else item.model_dump_json().encode()
            key = None if isinstance(item, bytes) or key_field is None else str(getattr(item, key_field)).encode()
            futures.append(await producer.send(topic, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)
