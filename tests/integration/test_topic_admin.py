"""The recommender group's topics on the embedded broker: created with their partitions and configs by
`clipstream topics create` and by ensure_recommender_topics, and a second run is harmless."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient

from cli.main import build_parser
from shared import topics
from shared.ownership import changelog_topic, members_topic
from shared.runtime.admin import config_drift, ensure_recommender_topics, ensure_topics, recommender_topics


async def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await client.start()
    try:
        return {t["topic"]: len(t["partitions"]) for t in await client.describe_topics(names)}
    finally:
        await client.close()


async def test_recommender_topics_are_created_once_with_their_partitions_and_configs(broker, group_id):
    counts, configs = recommender_topics(group_id)
    created = await ensure_recommender_topics(broker.bootstrap, group_id)
    assert sorted(created) == sorted(counts)
    found = await partition_counts(broker.bootstrap, list(counts))
    assert found[changelog_topic(group_id)] == topics.WATCH_EVENTS.partitions
    assert found[members_topic(group_id)] == 1
    assert found == counts
    assert await config_drift(broker.bootstrap, configs) == {}  # the broker kept cleanup.policy=compact

    assert await ensure_recommender_topics(broker.bootstrap, group_id) == []  # again: nothing to do
    assert await partition_counts(broker.bootstrap, list(counts)) == counts


async def test_a_changelog_made_without_compaction_is_reported(broker, group_id, caplog):
    changelog = changelog_topic(group_id)
    await ensure_topics(broker.bootstrap, {changelog: topics.WATCH_EVENTS.partitions})  # no configs
    with caplog.at_level(logging.WARNING, logger="shared.runtime.admin"):
        created = await ensure_recommender_topics(broker.bootstrap, group_id)
    assert changelog not in created and members_topic(group_id) in created
    assert f"topic {changelog} has cleanup.policy=" in caplog.text and "not compact" in caplog.text


def test_the_topics_command_creates_the_registrys_and_the_recommender_groups_topics(broker, monkeypatch, capsys):
    monkeypatch.setenv("CLIPSTREAM_RECOMMENDER_GROUP_ID", "it-command")
    for _ in range(2):
        args = build_parser().parse_args(["topics", "create", "--bootstrap", broker.bootstrap])
        assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "it-command.changelog" in out and "it-command.members" in out
    # the first run created the group's three topics (the broker fixture made the registry's), the second none
    assert out.count("created 3 topics") == 1 and out.count("created 0 topics") == 1
    counts, _ = recommender_topics("it-command")
    assert asyncio.run(partition_counts(broker.bootstrap, list(counts))) == counts
