"""Sequential signals: transitions (what users watch next), their votes, source and feature, and their state."""

from __future__ import annotations

import heapq
import math
import sqlite3
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from services.recommender.core.features import (
    FEATURES,
    candidate_features,
    covisit_votes,
    retrieved,
    retrieves,
    sample_negatives,
    sequential_votes,
    session_votes,
)
from services.recommender.core.feed import (
    FeedContext,
    SequentialSource,
    UserVectorSource,
)
from services.recommender.core.global_stats import GlobalStats
from services.recommender.core.sessions import K, SAMPLE, SESSION, SessionIndex
from services.recommender.core.stats import CoVisitation, Popularity, Transitions
from services.recommender.core.user_state import UserState
from services.recommender.engine import Recommender
from services.recommender.rows import Folding, Rows
from services.recommender.state_store import SCHEMA_VERSION, PartitionStore
from shared.events import WatchEvent
from shared.settings import RecommenderSettings

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_a_transition_gains_one_over_its_distance_and_runs_one_way():
    nxt = Transitions(steps=2)
    unit = nxt.unit  # weights are whole numbers: 1 / d in units of 1 / lcm(1..steps)
    assert unit == 2 and Transitions().unit == 2520
    nxt.add("d", ["a", "b", "c"])  # d follows c at distance 1, b at 2; a is past the window
    assert nxt.counts["c"] == {"d": 1.0 * unit} and nxt.counts["b"] == {"d": 0.5 * unit}
    assert "a" not in nxt.counts and "d" not in nxt.counts, "rules run from earlier to later only"
    nxt.add("d", ["c"])
    nxt.add("c", ["c"])  # an item never follows itself
    assert nxt.counts["c"] == {"d": 2.0 * unit}


def test_a_transitions_row_keeps_its_strongest_followers():
    nxt = Transitions(max_neighbours=2)
    for i, times in enumerate((5, 4, 3, 2, 1)):
        for _ in range(times):
            nxt.add(f"b{i}", ["a"])
    assert set(nxt.counts["a"]) <= {"b0", "b1", "b2", "b3", "b4"} and len(nxt.counts["a"]) <= 4
    assert {"b0", "b1"} <= set(nxt.counts["a"])


def ctx_for(recent: list[str], nxt: Transitions) -> FeedContext:
    state = UserState(recent_positive=recent)
    return FeedContext("u", state, 10, 0.0, None, Popularity(3600), CoVisitation(), np.zeros(len(FEATURES)),
                       transitions=nxt)


def test_votes_weigh_the_last_positives_1_half_quarter_over_the_strongest():
    nxt = Transitions()
    nxt.counts.update({"x": {"p": 2.0}, "y": {"p": 1.0, "q": 4.0}, "z": {"q": 1.0, "r": 2.0}, "w": {"s": 9.0}})
    votes = sequential_votes(ctx_for(["w", "x", "y", "z"], nxt))  # z last (weight 1), y 0.5, x 0.25, w none
    raw = {"p": 0.25 * 2 + 0.5 * 1, "q": 0.5 * 4 + 1 * 1, "r": 1 * 2}
    assert votes == pytest.approx({k: v / 3.0 for k, v in raw.items()})
    assert sequential_votes(ctx_for([], nxt)) == {}


def test_the_source_names_the_item_a_candidate_follows():
    nxt = Transitions()
    nxt.counts.update({"a": {"b": 3.0}, "c": {"d": 1.0}})
    found = SequentialSource().fetch(ctx_for(["a", "c"], nxt))
    assert [(c.video_id, c.reason) for c in found] == [("b", "watched next after a"), ("d", "watched next after c")]


def ev(user, video, n, minutes=0):
    return WatchEvent(event_id=f"e{n}", user_id=user, video_id=video, action="like", watch_ms=9000, duration_ms=10000,
                      ts=T0 + timedelta(minutes=minutes))


@pytest.fixture
def rec(tmp_path, catalogue):
    settings = RecommenderSettings(state_dir=tmp_path / "state", learn_fraction=0.0, candidates_per_source=20)
    r = Recommender(settings, catalogue, "watch.events")
    yield r
    r.close()


def test_what_others_watched_next_leads_the_feed(rec):
    n = 0
    for user in ("a", "b", "c"):  # everyone watches v1 after v0, and v2 before v0
        for video in ("v2", "v0", "v1"):
            n += 1
            rec.apply(ev(user, video, n, n), 0)
    rec.apply(ev("new", "v0", 100, 100), 0)
    feed = rec.feed("new", 3, now=T0.timestamp() + 7200)
    assert feed[0].video_id == "v1", "v1 and v2 are co-visited with v0 alike; only the order tells them apart"
    features = candidate_features(FeedContext("new", rec.user("new"), 3, T0.timestamp(), rec.catalogue,
                                              rec.popularity, rec.covisit, rec.scorer_weights(),
                                              transitions=rec.transitions), ["v1", "v2"])
    seq = features[:, FEATURES.index("sequential")]
    assert seq[0] == 1.0 and seq[1] == 0.0, "v2 came before v0, never after it"


def test_transitions_are_stored_with_the_offsets_and_restored(rec, tmp_path):
    rec.assign(0)
    for n, video in enumerate(("v3", "v4", "v5")):
        rec.apply(ev("u", video, n), 0)
    rec.commit(0, 3)
    want = {a: dict(row) for a, row in rec.partitions[0].transitions.counts.items()}
    assert want == {"v3": {"v4": 2520.0, "v5": 1260.0}, "v4": {"v5": 2520.0}}
    store = PartitionStore(tmp_path / "state", "watch.events", 1)
    try:
        store.commit(rec.snapshot(0, full=True).rows, full=True)
        back = Recommender(rec.settings, rec.catalogue, "other")
        back.install(0, store.load())
        assert {a: dict(r) for a, r in back.partitions[0].transitions.counts.items()} == want
        assert back.partitions[0].next_offset == 3
    finally:
        store.close()


def test_a_schema_2_file_is_upgraded_in_place_with_empty_transitions_and_no_hot_scores(tmp_path):
    db = sqlite3.connect(tmp_path / "watch.events-0.sqlite")  # tables as version 2 wrote them
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE users (user_id TEXT PRIMARY KEY, meta TEXT NOT NULL, long BLOB, short BLOB, negative BLOB);
        CREATE TABLE popularity (video_id TEXT PRIMARY KEY, score REAL NOT NULL, at REAL NOT NULL,
                                 total REAL NOT NULL);
        CREATE TABLE covisit (a TEXT NOT NULL, b TEXT NOT NULL, w REAL NOT NULL, PRIMARY KEY (a, b));
        CREATE TABLE ranker (name TEXT PRIMARY KEY, weights BLOB NOT NULL, updates INTEGER NOT NULL);
        INSERT INTO meta VALUES ('schema_version', 2), ('next_offset', 5);
        INSERT INTO popularity VALUES ('a', 2.0, 1700000000.0, 3.0);
        INSERT INTO covisit VALUES ('a', 'b', 1.0);
    """)
    db.commit()
    db.close()
    store = PartitionStore(tmp_path, "watch.events", 0)
    try:
        rows = store.load()
        assert rows.next_offset == 5 and rows.covisit == [("a", {"b": 1.0})] and rows.transitions == []
        assert rows.popularity == [("a", 2.0, 1.7e9, 3.0, 0.0)]
        version = store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        assert version == SCHEMA_VERSION == 5
    finally:
        store.close()


def test_replicas_merge_transitions_to_the_same_weights_whatever_order_flushes_arrive():
    flushes = [(0, Rows(transitions=[("a", {"b": 252.0, "c": 840.0})])),
               (1, Rows(transitions=[("a", {"b": 504.0})])),
               (2, Rows(transitions=[("a", {"b": 1764.0, "c": 360.0})])),
               (1, Rows(transitions=[("a", {"b": 756.0})])),  # a pair of partition 1's row grew
               (0, Rows(transitions=[("a", {"b": 0.0, "c": 0.0})]))]  # partition 0's row trimmed to nothing
    prior = np.zeros(len(FEATURES))
    one, other = GlobalStats(3600, prior), GlobalStats(3600, prior)
    for p, rows in flushes:
        one.apply(p, rows)
    for index in (2, 1, 3, 0, 4):  # another interleaving that keeps each partition's own order
        other.apply(*flushes[index])
    assert one.transitions.counts["a"] == other.transitions.counts["a"] == {"b": 756.0 + 1764.0, "c": 360.0}
    one.apply(2, Rows(), full=True)  # partition 2 starts over from an empty snapshot
    assert one.transitions.counts["a"] == {"b": 756.0}


def states(**recent: list[str]) -> dict[str, UserState]:
    return {u: UserState(recent_positive=list(items), last_ts=float(i)) for i, (u, items) in enumerate(recent.items())}


def test_session_knn_votes_by_weighted_overlap_over_set_sizes():
    users = states(me=["a", "b"], x=["a", "c"], y=["b", "a", "d", "e"], z=["f"])
    votes = SessionIndex(users).votes("me", users["me"].recent_positive)
    # me: a weighs 1/2, b 2/2; x shares a: 0.5 / (sqrt 2 * sqrt 2); y shares a and b: 1.5 / (sqrt 2 * sqrt 4)
    sx, sy = 0.5 / 2, 1.5 / (2 ** 0.5 * 2)
    raw = {"a": sx + sy, "b": sy, "c": sx, "d": sy, "e": sy}
    assert votes == pytest.approx(raw)
    index = SessionIndex(users)
    ctx = FeedContext("me", users["me"], 10, 0.0, None, Popularity(3600), CoVisitation(), np.zeros(len(FEATURES)),
                      sessions=index)
    assert session_votes(ctx) == pytest.approx({k: v / raw["a"] for k, v in raw.items()})
    users["x"].recent_positive.append("g")  # x's positives change: the index hears of it, and x votes for g too
    index.update("x", ["a", "c"], users["x"].recent_positive)
    assert index.votes("me", users["me"].recent_positive)["g"] == pytest.approx(0.5 / (2 ** 0.5 * 3 ** 0.5))
    assert "f" not in votes, "z shares nothing"
    assert SessionIndex(users).votes("nobody", []) == {}


def test_session_knn_neighbours_are_heapq_nlargest_over_key_tuples_ties_included():
    """The neighbours, ranked over arrays, are those (and the similarities) of ``heapq.nlargest`` over
    (last_ts, id) for the SAMPLE most recent and (similarity, id) for the K most similar: with more sharing
    users than SAMPLE, and last_ts and similarities tied across many users (ties go to the larger id)."""
    rng = np.random.default_rng(3)
    users = states(**{f"u{i}": [f"v{j}" for j in rng.integers(0, 30, int(rng.integers(1, 8)))] for i in range(1500)})
    for state in users.values():
        state.last_ts = float(rng.integers(0, 30))  # a few dozen distinct times for 1,500 users
    index = SessionIndex(users)

    def reference(user: str) -> list[tuple[float, str]]:
        overlap, distinct = index._overlap(user, users[user].recent_positive[-SESSION:])
        sampled = heapq.nlargest(SAMPLE, overlap, key=lambda u: (users[u].last_ts, u)) if len(overlap) > SAMPLE \
            else overlap
        norm = math.sqrt(distinct)
        return heapq.nlargest(K, [(overlap[u] / (norm * math.sqrt(index.size[u])), u) for u in sampled])

    overlapping = [len(index._overlap(u, users[u].recent_positive)[0]) for u in list(users)[:40]]
    assert max(overlapping) > SAMPLE, "the sample is taken"
    for user in list(users)[:40]:
        assert index.neighbours(user, users[user].recent_positive) == reference(user)


def test_the_session_index_follows_the_events_and_equals_one_built_from_the_states(rec):
    rng = np.random.default_rng(1)
    for n in range(300):
        rec.apply(ev(f"u{rng.integers(0, 15)}", f"v{rng.integers(0, 12)}", n, n), 0)
    st = rec.partitions[0]
    assert {k: v for k, v in st.sessions.by_item.items() if v} == dict(SessionIndex(st.users).by_item)
    user = next(iter(st.users))
    assert st.sessions.votes(user, st.users[user].recent_positive), "overlapping users vote"


def test_without_content_vectors_no_score_reads_the_vectors(rec):
    rec.apply(ev("u", "v0", 1), 0)
    ctx = FeedContext("u", rec.user("u"), 5, T0.timestamp(), rec.catalogue, rec.popularity, rec.covisit,
                      rec.scorer_weights(), content=False)
    x = candidate_features(ctx, ["v1", "v2"])
    assert not x[:, [FEATURES.index(f) for f in ("long", "short", "negative")]].any()
    assert UserVectorSource("long_term", "long").fetch(ctx) == []


def test_the_ranker_learns_only_from_positives_the_sources_retrieved_against_their_other_candidates(rec):
    for n, (user, video) in enumerate([("a", "v0"), ("a", "v1"), ("a", "v2"), ("b", "v0"), ("b", "v3")]):
        rec.apply(ev(user, video, n, n), 0)
    rec.apply(ev("me", "v0", 10, 10), 0)
    st = rec.partitions[0]

    def ctx() -> FeedContext:
        return FeedContext("me", rec.user("me"), 0, T0.timestamp(), rec.catalogue, st.popularity, st.covisit,
                           rec.scorer_weights(), transitions=st.transitions, sessions=st.sessions)

    def negatives(positive: str, share: float) -> list[str]:
        return sample_negatives(ctx(), positive, 4, 7, share)

    assert retrieved(ctx()) == {"v0", "v1", "v2", "v3"}  # v0 too (the neighbours liked it), but it is seen
    assert negatives("v9", 1.0) == [], "v9 was not retrieved: no learning step"
    drawn = negatives("v1", 1.0)
    assert set(drawn[:2]) == {"v2", "v3"}, "the other retrieved candidates, never the positive or a seen video"
    assert len(drawn) == 4 and not {"v0", "v1"} & set(drawn[2:]), "too few of them: the rest from the catalogue"
    assert negatives("v1", 1.0) == drawn, "the same draw every time (a replay after a crash learns the same step)"
    mixed = negatives("v9", 0.0)
    assert len(mixed) == 4 and "v0" not in mixed and "v9" not in mixed, "catalogue negatives for any positive"


def test_the_check_before_a_learning_step_finds_exactly_what_the_sources_retrieve(rec):
    """``retrieves`` (row by row, no votes counted) agrees with ``retrieved`` for every user and video."""
    rng = np.random.default_rng(3)
    for n in range(60):  # sparse: 30 users, 2 events each on average, over 12 videos
        rec.apply(ev(f"u{rng.integers(0, 30)}", f"v{rng.integers(0, 12)}", n, n), 0)
    st = rec.partitions[0]
    checked = found = 0
    for user in st.users:
        ctx = FeedContext(user, rec.user(user), 0, T0.timestamp(), rec.catalogue, st.popularity, st.covisit,
                          rec.scorer_weights(), transitions=st.transitions, sessions=st.sessions)
        for video in rec.catalogue.ids:
            fresh = FeedContext(user, rec.user(user), 0, T0.timestamp(), rec.catalogue, st.popularity, st.covisit,
                                rec.scorer_weights(), transitions=st.transitions, sessions=st.sessions)
            assert retrieves(fresh, video) == (video in retrieved(ctx)), (user, video)
            checked, found = checked + 1, found + (video in retrieved(ctx))
    assert 0 < found < checked, "both answers occur"


def test_session_knn_membership_past_the_k_nearest():
    """More users share an item than vote: an item only the least similar of them hold gets no vote, and the
    membership check says so without counting votes."""
    users = {"me": UserState(recent_positive=["a", "b"], last_ts=0.0)}
    for i in range(K):  # K users sharing both items: the most similar
        users[f"near{i}"] = UserState(recent_positive=["a", "b", "x"], last_ts=float(i))
    users["far"] = UserState(recent_positive=["a", "c", "d", "e", "y"], last_ts=1e6)  # shares a only, of 5
    index = SessionIndex(users)
    votes = index.votes("me", ["a", "b"])
    assert "x" in votes and "y" not in votes
    for item in ("a", "b", "x", "y", "c", "nothing"):
        assert index.votes_for("me", ["a", "b"], item) == (item in votes), item
    few = SessionIndex({u: users[u] for u in ("me", "far")})
    assert few.votes_for("me", ["a", "b"], "y") and "y" in few.votes("me", ["a", "b"]), "fewer than K: all vote"


def test_deltas_store_only_the_changed_pairs_and_every_store_folds_them_to_the_state_in_memory(rec, tmp_path):
    """Rows capped at 3 neighbours (trimmed past 6), flushed every few events: each delta holds the pairs that
    changed (a trimmed one with weight 0), and the local file, a changelog fold and another replica's merged
    view all end up with exactly the rows in memory."""
    rec.assign(0)
    st = rec.partitions[0]
    st.covisit.max_neighbours = st.transitions.max_neighbours = 3
    store, folding, merged = st.store, Folding(), GlobalStats(3600, rec.prior)
    rng = np.random.default_rng(3)
    trimmed = sizes = 0
    for n in range(240):
        rec.apply(ev(f"u{n % 5}", f"v{int(rng.integers(12))}", n, minutes=n), 0)
        if n % 7 == 6 or n == 239:
            snap = rec.snapshot(0, n + 1)
            for video, patch in snap.rows.covisit:
                assert set(patch) <= set(st.covisit.counts.get(video, {})) | {b for b, w in patch.items() if w == 0}
                trimmed += sum(w == 0 for w in patch.values())
                sizes += len(patch) < len(st.covisit.counts.get(video, {}))
            snap.write()
            folding.add(snap.rows)
            merged.apply(0, snap.rows)
    assert trimmed > 0, "rows were trimmed, and the dropped pairs travelled as weight 0"
    assert sizes > 0, "a delta holds less than the whole row"
    back, folded = store.load(), folding.rows()
    for table, rows_back, rows_folded, view in ((st.covisit, back.covisit, folded.covisit, merged.covisit),
                                               (st.transitions, back.transitions, folded.transitions, merged.transitions)):
        want = {a: row for a, row in table.counts.items() if row}
        assert dict(rows_back) == dict(rows_folded) == {a: dict(r) for a, r in view.counts.items()} == want


def test_session_knn_votes_summed_over_arrays_equal_the_dictionary_loop_to_the_bit_and_in_order():
    """``SessionIndex.votes`` (the neighbours' items encoded at once and summed by ``row_arrays.summed``) against
    the loop it replaced, each neighbour's similarity added into a dictionary item by item: equal keys in equal
    order and equal floats (==), over users whose positives overlap in every way."""
    rng = np.random.default_rng(11)
    users = states(**{f"u{i}": [f"v{j}" for j in rng.integers(0, 60, int(rng.integers(1, 25)))] for i in range(400)})
    index = SessionIndex(users)
    for user in list(users)[:60]:
        loop: dict[str, float] = {}
        for sim, other in index.neighbours(user, users[user].recent_positive):
            for item in dict.fromkeys(users[other].recent_positive):
                loop[item] = loop.get(item, 0.0) + sim
        assert list(index.votes(user, users[user].recent_positive).items()) == list(loop.items()), user


def test_a_learning_steps_features_read_from_the_vote_arrays_equal_the_feeds_read_from_the_dictionaries(rec):
    """A learning step looks its few videos' votes up in the arrays (no dictionary of every candidate built); a
    feed reads the dictionaries its sources built. Both give every feature the same value, to the bit."""
    rng = np.random.default_rng(5)
    only_older = 0
    for n in range(400):
        rec.apply(ev(f"u{rng.integers(0, 25)}", f"v{rng.integers(0, 12)}", n, n), 0)
        if n == 60:  # a sparse state: rows of the older positives hold videos the last three's do not
            _, only_older = features_both_ways(rec, rec.partitions[0])
    compared, _ = features_both_ways(rec, rec.partitions[0])
    assert compared > 50, "votes were there to compare"
    assert only_older > 0, "videos voted for by the older positives only, not by the last three, were compared"


def features_both_ways(rec, st) -> tuple[int, int]:
    """Every user's features both ways, equal; (nonzero co-visit and session-kNN votes, videos with a co-visit vote
    from the older positives only), summed over the users."""
    votes = only_older = 0
    for user in st.users:
        def ctx() -> FeedContext:
            return FeedContext(user, rec.user(user), 0, T0.timestamp(), rec.catalogue, st.popularity, st.covisit,
                               rec.scorer_weights(), transitions=st.transitions, sessions=st.sessions)

        learning, feed = ctx(), ctx()
        assert set(covisit_votes(feed)) | set(session_votes(feed)) | set(sequential_votes(feed)) == retrieved(learning)
        x = candidate_features(learning, rec.catalogue.ids)
        assert learning.votes is None and learning.session_votes is None, "no dictionary built for a step"
        y = candidate_features(feed, rec.catalogue.ids)
        assert np.array_equal(x, y), user
        votes += int(np.count_nonzero(x[:, [FEATURES.index("covisit"), FEATURES.index("session_knn")]]))
        only_older += int(np.sum((x[:, FEATURES.index("covisit")] > 0) & (x[:, FEATURES.index("covisit_recent")] == 0)))
    return votes, only_older
