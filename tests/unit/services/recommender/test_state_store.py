"""The local state file: what a commit writes reads back exactly, patches included (``state_store.py``)."""

from __future__ import annotations

import random

import pytest

from services.recommender.rows import Rows
from services.recommender.state_store import PartitionStore

ODD_IDS = ["plain", 'with "quotes"', "back\\slash", "ünïcødé ✓", "tab\there", "[1, 2]", "{}"]


@pytest.fixture
def store(tmp_path):
    store = PartitionStore(tmp_path, "watch.events", 0)
    yield store
    store.close()


def stored(store: PartitionStore) -> dict:
    rows = store.load()
    return {"popularity": sorted(rows.popularity), "covisit": dict(rows.covisit),
            "transitions": dict(rows.transitions), "trends": dict(rows.trends)}


def test_weights_and_odd_ids_read_back_exactly(store):
    rng = random.Random(3)
    weights = [sum(1 / rng.randint(1, 10) for _ in range(rng.randint(1, 30))) for _ in range(400)]
    weights += [rng.random() * 10 ** rng.randint(-12, 12) for _ in range(400)]
    weights += [1e-300, 5e-324, 1.7976931348623157e308]  # tiny, subnormal, the largest double
    covisit = [(a, {b: weights[(i * 7 + j) % len(weights)] for j, b in enumerate(ODD_IDS) if b != a})
               for i, a in enumerate(ODD_IDS)]
    popularity = [(v, weights[i], 1.7e9 + weights[-i - 4], float(i), weights[i + 10]) for i, v in enumerate(ODD_IDS)]
    store.commit(Rows(popularity=popularity, covisit=covisit, transitions=covisit[:2], next_offset=5), full=True)
    got = stored(store)
    assert got["popularity"] == sorted(popularity)
    assert got["covisit"] == dict(covisit) and got["transitions"] == dict(covisit[:2])
    assert store.next_offset() == 5


def test_a_delta_sets_changed_pairs_and_deletes_zeroed_ones(store):
    store.commit(Rows(covisit=[("a", {"b": 2.0, "c": 1.0}), ("b", {"a": 2.0})],
                      trends=[("topic:x", {"100": 3.0, "101": 1.0})], next_offset=3), full=True)
    store.commit(Rows(covisit=[("a", {"b": 0.0, "d": 4.0}), ("b", {"a": 0.0})],
                      trends=[("topic:x", {"100": 0.0, "102": 1.0})], next_offset=9))
    got = stored(store)
    assert got["covisit"] == {"a": {"c": 1.0, "d": 4.0}}, "b's row lost its only pair, a's its pair with b"
    assert got["trends"] == {"topic:x": {"101": 1.0, "102": 1.0}}
    assert store.next_offset() == 9


def test_a_full_commit_replaces_everything(store):
    store.commit(Rows(popularity=[("old", 1.0, 2.0, 3.0, 4.0)], covisit=[("old", {"x": 1.0})], next_offset=1),
                 full=True)
    store.commit(Rows(popularity=[("new", 1.0, 2.0, 3.0, 0.0)], covisit=[("new", {"y": 2.0})], next_offset=2),
                 full=True)
    got = stored(store)
    assert got["popularity"] == [("new", 1.0, 2.0, 3.0, 0.0)] and got["covisit"] == {"new": {"y": 2.0}}


def test_many_users_are_stored_in_chunks(store, monkeypatch):
    import services.recommender.state_store as state_store

    monkeypatch.setattr(state_store, "USERS_PER_STATEMENT", 3)  # 7 rows: two full statements and one short one
    users = [(f"u{i}", '{"events": %d}' % i, bytes([i]) * 8, None, b"") for i in range(7)]
    store.commit(Rows(users=users, next_offset=1))
    assert sorted(store.load().users) == users


def test_a_nan_weight_fails_the_write_and_leaves_the_file_as_it_was(store):
    import sqlite3

    store.commit(Rows(covisit=[("a", {"b": 1.0})], next_offset=1), full=True)
    with pytest.raises(sqlite3.IntegrityError):
        store.commit(Rows(covisit=[("a", {"b": float("nan"), "c": 2.0})], next_offset=2))
    assert stored(store)["covisit"] == {"a": {"b": 1.0}} and store.next_offset() == 1
