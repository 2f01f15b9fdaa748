"""Topic administration over the Kafka protocol (works on Tansu and Apache Kafka alike)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError, for_code

from shared.ownership import changelog_topic, members_topic
from shared.topics import DLQ_PARTITIONS, DLQ_SUFFIX, WATCH_EVENTS, all_topic_partitions

log = logging.getLogger(__name__)

TopicConfigs = Mapping[str, Mapping[str, str]]
"""Per topic name, the topic-level configs to create it with (``cleanup.policy`` and the like)."""

CHANGELOG_CONFIGS: dict[str, str] = {
    "cleanup.policy": "compact",
    # A flush is several records; a replica that crashes halfway rewrites the whole flush after its restore. An
    # hour before the cleaner may touch a record keeps the predecessors of such a half-written flush until then.
    "min.compaction.lag.ms": "3600000",
}
"""Configs of a recommender group's changelog: only the latest record of each key matters."""
MEMBERS_CONFIGS: dict[str, str] = {"cleanup.policy": "compact"}
"""Configs of a recommender group's memberships topic: only the latest claim of each partition matters."""


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


def new_topic(name: str, partitions: int, replication_factor: int = 1,
              configs: Mapping[str, str] | None = None) -> NewTopic:
    """The create request of one topic."""
    if partitions < 1 or replication_factor < 1:
        raise ValueError(f"{name}: partitions ({partitions}) and replication factor ({replication_factor}) must be >= 1")
    return NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                    topic_configs=dict(configs or {}))


def _raise_for_topic_errors(response: object) -> bool:
    """Raise the broker's error for a topic it did not create; returns False when it existed already.

    aiokafka's ``create_topics`` returns the response as it came, with one error code per topic: a
    replication factor above the broker count, for one, is no exception until it is read here."""
    for topic, code, *rest in getattr(response, "topic_errors", []):
        if not code:
            continue
        error = for_code(code)
        if error is TopicAlreadyExistsError:
            return False
        message = rest[0] if rest and rest[0] else error.__name__
        raise error(f"creating topic {topic}: {message}")
    return True


async def ensure_topics(bootstrap: str, partitions: Mapping[str, int] | None = None, replication_factor: int = 1,
                        configs: TopicConfigs | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns those created. Topics that exist are left alone.

    ``partitions``: topic name to partition count (default: the registry's topics and DLQs);
    ``replication_factor``: replicas of each topic created (``KafkaSettings.replication_factor``: 1 on one
    broker, 3 in production); ``configs``: topic-level configs of the topics named in it."""
    wanted = dict(partitions or all_topic_partitions())
    configs = configs or {}
    requests = {name: new_topic(name, count, replication_factor, configs.get(name)) for name, count in wanted.items()}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        created = []
        for name, request in requests.items():
            if name in existing:
                continue
            try:
                if _raise_for_topic_errors(await admin.create_topics([request])):
                    created.append(name)
            except TopicAlreadyExistsError:  # created meanwhile by someone else
                pass
        log.info("topics: %d existed, %d created (replication factor %d)",
                 len(existing & set(wanted)), len(created), replication_factor)
        return created
    finally:
        await admin.close()


def recommender_topics(group: str, partitions: int = WATCH_EVENTS.partitions) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    """The topics of recommender group ``group``: (name to partition count, name to configs).

    ``<group>.changelog`` (compacted, one partition per watch.events partition: a partition's state follows
    the partition), its dead-letter topic (changelog records that fail to decode at restore), and
    ``<group>.members`` (compacted, one partition so that claims stay in order)."""
    changelog = changelog_topic(group)
    counts = {changelog: partitions, changelog + DLQ_SUFFIX: DLQ_PARTITIONS, members_topic(group): 1}
    configs = {changelog: dict(CHANGELOG_CONFIGS), members_topic(group): dict(MEMBERS_CONFIGS)}
    return counts, configs


async def ensure_recommender_topics(bootstrap: str, group: str, partitions: int = WATCH_EVENTS.partitions,
                                    replication_factor: int = 1) -> list[str]:
    """Create the changelog and memberships topics of recommender group ``group`` where missing (see
    :func:`recommender_topics`); returns those created. For the ones that existed, a config that differs
    from what they need (a changelog that is not compacted loses state to retention) is logged as a warning:
    :func:`config_drift` tells which, and ``kafka-configs.sh --alter`` changes them."""
    counts, configs = recommender_topics(group, partitions)
    created = await ensure_topics(bootstrap, counts, replication_factor, configs)
    try:
        drift = await config_drift(bootstrap, {name: want for name, want in configs.items() if name not in created})
    except (KafkaError, OSError) as exc:  # the check is advice: the topics are there either way
        log.warning("could not read the configs of %s: %s", ", ".join(configs), exc)
        drift = {}
    for name, differences in drift.items():
        for key, (want, have) in differences.items():
            log.warning("topic %s has %s=%s, not %s as the recommender needs",
                        name, key, "(unset)" if have is None else have, want)
    return created


async def config_drift(bootstrap: str, configs: TopicConfigs) -> dict[str, dict[str, tuple[str, str | None]]]:
    """For each topic in ``configs``, the configs whose value on the broker differs: key to (wanted, found;
    None where the broker does not report it). Topics that do not exist are left out."""
    if not configs:
        return {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [name for name in configs if name in existing]
        if not names:
            return {}
        # every config of each topic: Tansu drops the connection when the request names the keys it wants
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
    finally:
        await admin.close()
    found: dict[str, dict[str, str | None]] = {}
    for response in responses:
        for code, message, _type, name, entries in (r[:5] for r in response.resources):
            if code:
                raise for_code(code)(f"describing the configs of {name}: {message}")
            found[name] = {entry[0]: entry[1] for entry in entries}
    drift = {}
    for name in names:
        differences = {key: (want, found.get(name, {}).get(key)) for key, want in configs[name].items()
                       if found.get(name, {}).get(key) != want}
        if differences:
            drift[name] = differences
    return drift


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


__all__ = ["CHANGELOG_CONFIGS", "KafkaConnectionError", "MEMBERS_CONFIGS", "config_drift", "ensure_recommender_topics",
           "ensure_topics", "list_topics", "new_topic", "recommender_topics", "wait_until_ready"]
