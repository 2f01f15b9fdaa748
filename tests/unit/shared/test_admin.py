"""shared/runtime/admin.py without a broker: what the create requests carry (partitions, replication factor,
topic configs), the recommender group's topics, and that a per-topic error in the broker's answer is raised.
tests/integration/test_topic_admin.py runs the same against the embedded broker."""

from __future__ import annotations

from types import SimpleNamespace
from typing import ClassVar

import pytest
from aiokafka.errors import InvalidReplicationFactorError, TopicAlreadyExistsError

from shared import topics
from shared.ownership import changelog_topic, members_topic
from shared.runtime import admin


class FakeAdmin:
    """Stands for AIOKafkaAdminClient: records the create requests, answers with per-topic error codes."""

    instances: ClassVar[list[FakeAdmin]] = []
    existing: ClassVar[set[str]] = set()
    errors: ClassVar[dict[str, tuple[int, str | None]]] = {}
    configs: ClassVar[dict[str, dict[str, str]]] = {}

    def __init__(self, **kwargs) -> None:
        self.requests: list = []
        FakeAdmin.instances.append(self)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return sorted(FakeAdmin.existing)

    async def create_topics(self, new_topics):
        self.requests += new_topics
        answers = []
        for topic in new_topics:
            code, message = FakeAdmin.errors.get(topic.name, (0, None))
            if not code:
                FakeAdmin.existing.add(topic.name)
            answers.append((topic.name, code, message))
        return SimpleNamespace(topic_errors=answers)

    async def describe_configs(self, resources):
        assert all(r.configs is None for r in resources)  # Tansu refuses requests that name config keys
        entries = [(0, None, 2, r.name, [(k, v, False, 5, False, []) for k, v in FakeAdmin.configs.get(r.name, {}).items()])
                   for r in resources]
        return [SimpleNamespace(resources=entries)]


@pytest.fixture
def fake_admin(monkeypatch):
    FakeAdmin.instances, FakeAdmin.existing, FakeAdmin.errors, FakeAdmin.configs = [], set(), {}, {}
    monkeypatch.setattr(admin, "AIOKafkaAdminClient", FakeAdmin)
    return FakeAdmin


def sent(fake) -> dict:
    return {r.name: r for instance in fake.instances for r in instance.requests}


def test_the_recommender_group_has_a_compacted_changelog_per_watch_partition_and_one_members_partition():
    counts, configs = admin.recommender_topics("clipstream-recommender")
    changelog, members = changelog_topic("clipstream-recommender"), members_topic("clipstream-recommender")
    assert (changelog, members) == ("clipstream-recommender.changelog", "clipstream-recommender.members")
    assert counts == {changelog: topics.WATCH_EVENTS.partitions, changelog + ".dlq": topics.DLQ_PARTITIONS,
                      members: 1}
    assert configs[changelog] == {"cleanup.policy": "compact", "min.compaction.lag.ms": "3600000"}
    assert configs[members] == {"cleanup.policy": "compact"}
    assert changelog + ".dlq" not in configs  # dead letters are kept by retention, like every DLQ
    # the names cannot collide with the registry's topics
    assert not set(counts) & set(topics.all_topic_partitions())


async def test_ensure_topics_creates_the_missing_ones_with_the_replication_factor_and_configs(fake_admin):
    fake_admin.existing = {"a"}
    created = await admin.ensure_topics("kafka:9092", {"a": 3, "b": 2, "c": 1}, replication_factor=3,
                                        configs={"b": {"cleanup.policy": "compact"}})
    assert created == ["b", "c"]
    requests = sent(fake_admin)
    assert set(requests) == {"b", "c"}  # an existing topic is not asked for again
    assert (requests["b"].num_partitions, requests["b"].replication_factor) == (2, 3)
    assert requests["b"].topic_configs == {"cleanup.policy": "compact"}
    assert (requests["c"].num_partitions, requests["c"].replication_factor, requests["c"].topic_configs) == (1, 3, {})


async def test_ensure_topics_defaults_to_the_registry_at_replication_factor_one(fake_admin):
    created = await admin.ensure_topics("kafka:9092")
    assert set(created) == set(topics.all_topic_partitions())
    assert {r.replication_factor for r in sent(fake_admin).values()} == {1}
    assert {n: r.num_partitions for n, r in sent(fake_admin).items()} == topics.all_topic_partitions()


async def test_a_topic_the_broker_refuses_is_an_error_and_one_created_meanwhile_is_not(fake_admin):
    """aiokafka returns per-topic errors inside the response: a replication factor above the broker count
    must fail the command (the Job retries), not be counted as created."""
    fake_admin.errors = {"x": (38, "Replication factor: 3 larger than available brokers: 1."),
                         "y": (36, "Topic 'y' already exists.")}
    assert await admin.ensure_topics("kafka:9092", {"y": 1}) == []
    with pytest.raises(InvalidReplicationFactorError, match="larger than available brokers"):
        await admin.ensure_topics("kafka:9092", {"x": 1}, replication_factor=3)
    assert admin._raise_for_topic_errors(SimpleNamespace(topic_errors=[("z", 36)])) is False  # v0: no message
    assert TopicAlreadyExistsError is not InvalidReplicationFactorError


def test_a_topic_needs_a_partition_and_a_replica():
    with pytest.raises(ValueError, match="replication factor"):
        admin.new_topic("t", 1, 0)
    with pytest.raises(ValueError, match="partitions"):
        admin.new_topic("t", 0, 1)


async def test_ensure_recommender_topics_creates_them_and_reports_an_uncompacted_changelog(fake_admin, caplog):
    created = await admin.ensure_recommender_topics("kafka:9092", "grp", replication_factor=3)
    assert set(created) == {"grp.changelog", "grp.changelog.dlq", "grp.members"}
    requests = sent(fake_admin)
    assert requests["grp.changelog"].num_partitions == topics.WATCH_EVENTS.partitions
    assert requests["grp.changelog"].topic_configs["cleanup.policy"] == "compact"
    assert requests["grp.members"].num_partitions == 1
    assert {r.replication_factor for r in requests.values()} == {3}

    # they exist now: a second run creates nothing, and checks their configs
    fake_admin.instances = []
    fake_admin.configs = {"grp.changelog": {"cleanup.policy": "delete", "min.compaction.lag.ms": "3600000"},
                          "grp.members": {"cleanup.policy": "compact"}}
    with caplog.at_level("WARNING", logger=admin.log.name):
        assert await admin.ensure_recommender_topics("kafka:9092", "grp") == []
    assert sent(fake_admin) == {}
    assert [r.getMessage() for r in caplog.records] == [
        "topic grp.changelog has cleanup.policy=delete, not compact as the recommender needs"]
    assert await admin.config_drift("kafka:9092", {"grp.changelog": {"cleanup.policy": "compact"}, "nope": {}}) == {
        "grp.changelog": {"cleanup.policy": ("compact", "delete")}}


async def test_a_config_check_the_broker_cannot_answer_does_not_fail_the_creation(fake_admin, monkeypatch, caplog):
    from aiokafka.errors import KafkaConnectionError

    fake_admin.existing = {"grp.changelog"}

    async def refuse(self, resources):
        raise KafkaConnectionError("Connection at kafka:9092 closed")

    monkeypatch.setattr(FakeAdmin, "describe_configs", refuse)
    with caplog.at_level("WARNING", logger=admin.log.name):
        created = await admin.ensure_recommender_topics("kafka:9092", "grp")
    assert set(created) == {"grp.changelog.dlq", "grp.members"}
    assert "could not read the configs" in caplog.text


async def test_a_config_the_broker_does_not_report_is_drift(fake_admin, caplog):
    fake_admin.existing = {"grp.members"}  # no configs at all: made by hand, or auto-created by a producer
    with caplog.at_level("WARNING", logger=admin.log.name):
        await admin.ensure_recommender_topics("kafka:9092", "grp")
    assert "topic grp.members has cleanup.policy=(unset), not compact" in caplog.text
