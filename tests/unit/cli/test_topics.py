"""`clipstream topics create` (compose's `topics` container, the Kubernetes topics Job): the registry's topics
and the recommender group's, with the replication factor and the group the environment gives."""

from __future__ import annotations

import pytest

from cli.main import build_parser
from shared.config_catalog import all_env_names
from shared.runtime import admin


@pytest.fixture
def calls(monkeypatch):
    for name in all_env_names():
        monkeypatch.delenv(name, raising=False)
    seen: dict[str, tuple] = {}

    async def ensure_topics(bootstrap, partitions=None, replication_factor=1, configs=None):
        seen["registry"] = (bootstrap, partitions, replication_factor)
        return ["watch.events"]

    async def ensure_recommender_topics(bootstrap, group, partitions=6, replication_factor=1):
        seen["recommender"] = (bootstrap, group, replication_factor)
        return [f"{group}.changelog", f"{group}.members"]

    async def list_topics(bootstrap):
        return []

    monkeypatch.setattr(admin, "ensure_topics", ensure_topics)
    monkeypatch.setattr(admin, "ensure_recommender_topics", ensure_recommender_topics)
    monkeypatch.setattr(admin, "list_topics", list_topics)
    return seen


def run(*argv: str) -> int:
    args = build_parser().parse_args(["topics", *argv])
    return args.func(args)


def test_create_makes_the_recommender_groups_topics_with_the_environments_replication_factor(calls, monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("CLIPSTREAM_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("CLIPSTREAM_RECOMMENDER_GROUP_ID", "recs")
    assert run("create") == 0
    assert calls["registry"] == ("kafka:9092", None, 3)
    assert calls["recommender"] == ("kafka:9092", "recs", 3)
    assert "created 3 topics (replication factor 3): watch.events, recs.changelog, recs.members" in capsys.readouterr().out


def test_defaults_one_replica_and_the_default_group(calls):
    assert run("create", "--bootstrap", "b:1") == 0
    assert calls["registry"] == ("b:1", None, 1)
    assert calls["recommender"] == ("b:1", "clipstream-recommender", 1)


def test_list_creates_nothing(calls):
    assert run("list", "--bootstrap", "b:1") == 0
    assert calls == {}
