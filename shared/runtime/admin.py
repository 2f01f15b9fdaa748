"""Topic administration over the Kafka protocol (works on Tansu and Apache Kafka alike)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from shared.topics import all_topic_partitions

log = logging.getLogger(__name__)


async def wait_until_ready(bootstrap: str, timeout_s: float = 20.0) -> None:
    """Return once the broker answers a metadata request, or raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    while time.monotonic() < deadline:
        try:  # a plain TCP probe first keeps the client from logging refused connections
            _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
        except OSError as exc:
            last = exc
            await asyncio.sleep(0.05)
            continue
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last = exc
            await asyncio.sleep(0.1)
        finally:
            await admin.close()
    raise TimeoutError(f"broker at {bootstrap} did not answer within {timeout_s}s: {last}")


async def ensure_topics(bootstrap: str, partitions: dict[str, int] | None = None) -> list[str]:
    """Create the registry's topics (and DLQs) that do not exist yet. Returns those created."""
    wanted = partitions or all_topic_partitions()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        created = []
        for name in missing:
            try:
                await admin.create_topics([NewTopic(name, num_partitions=wanted[name], replication_factor=1)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        log.info("topics: %d existed, %d created", len(existing & set(wanted)), len(created))
        return created
    finally:
        await admin.close()


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


__all__ = ["ensure_topics", "list_topics", "wait_until_ready", "KafkaConnectionError"]
