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


def test_a_large_snapshot_is_stored_in_chunks(store, monkeypatch):
    import services.recommender.state_store as state_store

    monkeypatch.setattr(state_store, "CHUNK_BYTES", 100)  # about two users' rows a record
    users = [(f"u{i}", '{"events": %d}' % i, bytes([i]) * 40, None, b"") for i in range(7)]
    store.commit(Rows(users=users, covisit=[("a", {"b": 1.0})], next_offset=1), full=True)
    assert store.db.execute("SELECT COUNT(*) FROM log").fetchone()[0] > 2
    assert sorted(store.load().users) == users and store.load().covisit == [("a", {"b": 1.0})]
    assert store.snapshot_entries == 8 and not store.wants_full()


def test_a_nan_weight_fails_the_write_and_leaves_the_file_as_it_was(store):
    store.commit(Rows(covisit=[("a", {"b": 1.0})], next_offset=1), full=True)
    with pytest.raises(ValueError, match="not finite"):
        store.commit(Rows(covisit=[("a", {"b": float("nan"), "c": 2.0})], next_offset=2))
    assert stored(store)["covisit"] == {"a": {"b": 1.0}} and store.next_offset() == 1


def test_deltas_are_appended_until_they_outweigh_the_snapshot(tmp_path):
    store = PartitionStore(tmp_path, "watch.events", 0, min_entries=5)
    try:
        store.commit(Rows(covisit=[("a", {"b": 1.0, "c": 2.0})], popularity=[("a", 1.0, 2.0, 3.0, 0.0)],
                          next_offset=1), full=True)
        assert store.snapshot_entries == 3 and not store.wants_full()
        for n in range(2, 8):  # one pair set a flush, the previous one dropped
            store.commit(Rows(covisit=[("a", {f"x{n}": float(n), f"x{n - 1}": 0.0})], next_offset=n))
        assert store.since_snapshot == 12 and store.wants_full()
        assert store.db.execute("SELECT COUNT(*) FROM log").fetchone()[0] == 7
        want = store.load()
        assert want.covisit == [("a", {"b": 1.0, "c": 2.0, "x7": 7.0})] and want.next_offset == 7
        store.close()
        store = PartitionStore(tmp_path, "watch.events", 0, min_entries=5)  # the counts are read back
        assert (store.snapshot_entries, store.since_snapshot) == (3, 12) and store.wants_full()
        store.commit(want, full=True)  # what a flush does when asked: the log is that snapshot alone
        assert store.db.execute("SELECT COUNT(*) FROM log").fetchone()[0] == 1 and not store.wants_full()
        assert store.load() == want
    finally:
        store.close()


def test_a_schema_4_file_is_rewritten_as_a_log_with_every_table(tmp_path):
    import sqlite3

    from services.recommender.state_store import SCHEMA_VERSION

    db = sqlite3.connect(tmp_path / "watch.events-0.sqlite")  # as version 4 wrote it
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE users (user_id TEXT PRIMARY KEY, meta TEXT NOT NULL, long BLOB, short BLOB, negative BLOB);
        CREATE TABLE popularity (video_id TEXT PRIMARY KEY, score REAL NOT NULL, at REAL NOT NULL,
                                 total REAL NOT NULL, hot REAL NOT NULL DEFAULT 0);
        CREATE TABLE covisit (a TEXT NOT NULL, b TEXT NOT NULL, w REAL NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
        CREATE TABLE transitions (a TEXT NOT NULL, b TEXT NOT NULL, w REAL NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
        CREATE TABLE trends (a TEXT NOT NULL, b TEXT NOT NULL, w REAL NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
        CREATE TABLE first_views (a TEXT NOT NULL, b TEXT NOT NULL, w REAL NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
        CREATE TABLE ranker (name TEXT PRIMARY KEY, weights BLOB NOT NULL, updates INTEGER NOT NULL);
        INSERT INTO meta VALUES ('schema_version', 4), ('next_offset', 42), ('model_version', 'm1');
        INSERT INTO popularity VALUES ('a', 2.0, 1700000000.0, 3.0, 0.5);
        INSERT INTO covisit VALUES ('a', 'b', 1.5), ('a', 'c', 0.25), ('b', 'a', 1.5);
        INSERT INTO transitions VALUES ('a', 'b', 2.0);
        INSERT INTO trends VALUES ('topic:x', '100', 3.0);
        INSERT INTO first_views VALUES ('a', 'views', 7.0);
        INSERT INTO ranker VALUES ('scorer', X'000000000000F03F', 9);
    """)
    db.execute("INSERT INTO users VALUES ('u1', '{\"events\": 3}', ?, NULL, ?)", (b"\x01" * 8, b""))
    db.commit()
    db.close()
    store = PartitionStore(tmp_path, "watch.events", 0)
    try:
        rows = store.load()
        assert rows.users == [("u1", '{"events": 3}', b"\x01" * 8, None, b"")]
        assert rows.popularity == [("a", 2.0, 1.7e9, 3.0, 0.5)]
        assert dict(rows.covisit) == {"a": {"b": 1.5, "c": 0.25}, "b": {"a": 1.5}}
        assert rows.transitions == [("a", {"b": 2.0})] and rows.trends == [("topic:x", {"100": 3.0})]
        assert rows.first_views == [("a", {"views": 7.0})] and rows.ranker == (b"\x00" * 6 + b"\xf0?", 9)
        assert (rows.next_offset, rows.model_version) == (42, "m1")
        tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"meta", "log"}
        assert store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == SCHEMA_VERSION
    finally:
        store.close()


def test_a_garbled_log_record_raises_a_changelog_error(store):
    from services.recommender.changelog import ChangelogError

    store.commit(Rows(covisit=[("a", {"b": 1.0})], next_offset=1), full=True)
    store.db.execute("UPDATE log SET body = substr(body, 1, length(body) - 3)")
    with pytest.raises(ChangelogError, match="cut short"):
        store.load()


def test_a_file_upgraded_but_still_saying_schema_4_keeps_its_log(tmp_path):
    store = PartitionStore(tmp_path, "watch.events", 0)
    store.commit(Rows(covisit=[("a", {"b": 1.0})], next_offset=42), full=True)
    assert store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == 5
    store.db.execute("UPDATE meta SET value = 4 WHERE key = 'schema_version'")  # killed before the version was written
    store.close()
    store = PartitionStore(tmp_path, "watch.events", 0)
    try:
        rows = store.load()
        assert rows.covisit == [("a", {"b": 1.0})] and rows.next_offset == 42, "never rewritten from no tables"
    finally:
        store.close()


@pytest.mark.parametrize("damage", ["not sqlite", "garbled log"])
def test_an_unreadable_file_is_moved_aside_and_a_fresh_one_opened(tmp_path, damage):
    from services.recommender.state_store import open_store

    store = PartitionStore(tmp_path, "watch.events", 3)
    store.commit(Rows(covisit=[("a", {"b": 1.0})], next_offset=9), full=True)
    if damage == "garbled log":
        store.db.execute("UPDATE log SET body = substr(body, 1, length(body) - 3)")
    store.close()
    if damage == "not sqlite":
        (tmp_path / "watch.events-3.sqlite").write_bytes(b"this is not a database" * 300)
    store, rows, why = open_store(tmp_path, "watch.events", 3)
    try:
        assert rows == Rows() and rows.next_offset is None and store.load() == Rows()
        assert why is not None and "moved to watch.events-3.sqlite.unreadable-" in why
        assert len(list(tmp_path.glob("watch.events-3.sqlite.unreadable-*"))) >= 1
        store.commit(Rows(covisit=[("c", {"d": 2.0})], next_offset=1), full=True)  # the fresh file works
        assert store.load().covisit == [("c", {"d": 2.0})]
    finally:
        store.close()
    store, rows, why = open_store(tmp_path, "watch.events", 3)
    store.close()
    assert why is None and rows.next_offset == 1


def test_damaged_log_bodies_raise_only_changelog_errors(store):
    """Any byte of a record changed, or the record cut anywhere: a ChangelogError (or rows), never another error."""
    import random

    from services.recommender.changelog import ChangelogError, encode_rows
    from services.recommender.core.user_state import Step
    from services.recommender.state_store import frame, unframe

    rows = Rows(users=[("u", '{"events": 1}', b"\x00" * 16, None, None)],
                user_steps=[("w", [Step("e", 1.7e9, None, "v", 1.0, True, True)])],
                popularity=[("v", 1.0, 2.0, 3.0, 0.0)], covisit=[("v", {"x": 1.5})], ranker=(b"\x00" * 8, 2))
    [body] = frame(encode_rows(rows))
    whole = Rows()
    unframe(body, whole)
    assert whole == rows
    rng, refused = random.Random(5), 0
    for _ in range(400):
        damaged = bytearray(body)
        if rng.random() < 0.5:
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        else:
            damaged = damaged[:rng.randrange(len(damaged))]
        try:
            unframe(bytes(damaged), Rows())
        except ChangelogError:
            refused += 1
    assert refused > 100, "most damage is noticed (a changed byte inside a number or an id may still decode)"
