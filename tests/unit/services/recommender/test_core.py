from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from services.recommender.core.catalogue import Catalogue, VideoInfo
from services.recommender.core.signals import signal_weight
from services.recommender.core.stats import CoVisitation, Popularity, Transitions
from services.recommender.core.user_state import UserState, apply_event
from services.recommender.engine import Recommender
from services.recommender.state_store import PartitionStore
from shared.events import WatchEvent
from shared.settings import RecommenderSettings
from shared.vectors import EdgeVectorStore

DIM = 8
T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)
KW = dict(long_half_life=20, short_half_life=3, session_gap_s=1800, seen_limit=100, covisit_window=3)


def ev(user, video, action="complete", **kw):
    kw.setdefault("ts", T0)
    kw.setdefault("watch_ms", 9000)
    kw.setdefault("duration_ms", 10000)
    return WatchEvent(user_id=user, video_id=video, action=action, **kw)


def basis(i):
    v = np.zeros(DIM, np.float32)
    v[i] = 1
    return v


def test_signal_weights_order_the_actions():
    w = {a: signal_weight(ev("u", "v", a)) for a in ("impression", "skip", "dislike", "play", "complete", "like", "share")}
    assert w["dislike"] < w["skip"] < w["impression"] == 0 < w["play"] < w["complete"] < w["like"] < w["share"]
    early = signal_weight(ev("u", "v", "skip", watch_ms=500))
    late = signal_weight(ev("u", "v", "skip", watch_ms=9500))
    assert early < late < 0, "skipping at once says more than skipping near the end"


def test_user_vectors_follow_positive_and_negative_signals():
    st = UserState()
    apply_event(st, ev("u", "a"), basis(0), **KW)
    apply_event(st, ev("u", "b", "dislike"), basis(1), **KW)
    assert st.long[0] > 0 and st.long[1] == 0
    assert st.negative[1] > 0 and st.disliked == ["b"]
    assert st.seen == ["a", "b"] and st.recent_positive == ["a"]


def test_long_and_session_vectors_are_mixed_from_one_update_but_never_share_memory():
    """The weighted vector is computed once per event for both; a first event gives each its own copy, so
    the second event decays each by its own half-life to different values (half-lives of KW)."""
    st = UserState()
    apply_event(st, ev("u", "a"), basis(0), **KW)
    assert st.long is not st.short and not np.shares_memory(st.long, st.short)
    assert st.long[0] == st.short[0] > 0
    apply_event(st, ev("u", "b"), basis(1), **KW)
    keep_long, keep_short = 0.5 ** (1 / KW["long_half_life"]), 0.5 ** (1 / KW["short_half_life"])
    assert st.long[0] == pytest.approx(st.short[0] * keep_long / keep_short)
    assert st.long[1] == st.short[1] > 0


def test_duplicate_event_ids_count_once():
    st = UserState()
    e = ev("u", "a")
    first, again = apply_event(st, e, basis(0), **KW), apply_event(st, e, basis(0), **KW)
    assert not first.duplicate and again.duplicate and st.events == 1


def test_seen_and_event_ids_stay_lists_in_order_with_their_sets_in_step():
    """Re-watched videos move to the end of ``seen``, the oldest fall off past the limits, an id that fell off
    the dedupe window counts again, short lists and long ones (kept as sets too) alike, and a state read back
    from its row (sets built afresh) goes on the same."""
    rng = np.random.default_rng(5)
    st, seen, ids = UserState(), [], []
    for i in range(600):
        video, event_id = f"v{rng.integers(150)}", f"e{rng.integers(400)}"
        applied = apply_event(st, ev("u", video, event_id=event_id), basis(i % DIM), **KW, dedupe_window=80)
        assert applied.duplicate == (event_id in ids)
        if not applied.duplicate:
            ids = (ids + [event_id])[-80:]
            seen = ([v for v in seen if v != video] + [video])[-KW["seen_limit"]:]
        assert st.seen == seen and st.event_ids == ids
        assert st.seen_set() == set(seen) and all(st.has_event(e) for e in ids) and not st.has_event("never")
        if i == 300:
            st = UserState.from_row(*st.to_row())
    assert len(seen) == KW["seen_limit"] and len(ids) == 80  # both past SET_FROM: kept as sets too
    assert st._seen_set == set(seen) and st._event_set == set(ids)


def test_session_vector_restarts_after_a_gap_but_long_term_remembers():
    st = UserState()
    apply_event(st, ev("u", "a"), basis(0), **KW)
    apply_event(st, ev("u", "b", ts=T0 + timedelta(hours=2)), basis(1), **KW)
    assert st.short[0] == 0 and st.short[1] > 0
    assert st.long[0] > 0


def test_out_of_order_timestamps_never_move_the_clock_back():
    st = UserState()
    apply_event(st, ev("u", "a", ts=T0 + timedelta(minutes=5)), basis(0), **KW)
    apply_event(st, ev("u", "b", ts=T0), basis(1), **KW)
    assert st.last_ts == (T0 + timedelta(minutes=5)).timestamp() and st.events == 2


def test_unknown_video_still_counts_as_seen_without_moving_the_vector():
    st = UserState()
    apply_event(st, ev("u", "ghost"), None, **KW)
    assert st.seen == ["ghost"] and st.long is None and st.is_cold


def test_state_round_trips_exactly_through_its_stored_row():
    st = UserState()
    apply_event(st, ev("u", "a", session_id="s1"), basis(2), **KW)
    apply_event(st, ev("u", "b", "dislike"), basis(3) * 0.3, **KW)
    again = UserState.from_row(*st.to_row())
    assert np.array_equal(again.long, st.long) and np.array_equal(again.negative, st.negative)
    assert again.short is not None and again.seen == st.seen and again.session_id == "s1"


def test_popularity_decays_and_tolerates_late_events():
    pop = Popularity(half_life_s=3600)
    t = T0.timestamp()
    pop.add("a", 1.0, t)
    pop.add("b", 1.0, t + 3600)
    assert pop.score("a", t + 3600) == pytest.approx(0.5, rel=1e-6)
    pop.add("b", 1.0, t)  # an hour late: worth half now
    assert pop.score("b", t + 3600) == pytest.approx(1.5, rel=1e-6)
    assert [v for v, _ in pop.top(2, t + 3600)] == ["b", "a"]
    many = pop.scores_at(["b", "missing", "a"], t + 3600)
    assert many.tolist() == pytest.approx([pop.score("b", t + 3600), 0.0, pop.score("a", t + 3600)])


def test_trending_top_is_nlargest_of_the_decayed_scores_ties_in_arrival_order():
    """top() ranks in one numpy pass; it must give what heapq.nlargest over score() gives, ties included."""
    import heapq

    rng = np.random.default_rng(3)
    pop = Popularity(half_life_s=3600)
    for i in range(400):  # few distinct weights and times: many exact ties, and a late event now and then
        pop.add(f"v{rng.integers(150)}", float(rng.integers(1, 3)), float(rng.choice([0, 600, 1200, 900 - 600 * (i % 7 == 0)])))
    pop.replace("v3", [(2.0, 1200.0, 2.0, 2.0)])  # moved to the end of the arrival order, as a merge does
    for now, n in ((1200.0, 10), (5000.0, 40), (1200.0, 149), (1200.0, 500), (800.0, 1)):
        expected = heapq.nlargest(n, ((v, pop.score(v, now)) for v in pop.scores), key=lambda x: x[1])
        got = pop._ranked(n, now)
        assert [v for v, _ in got] == [v for v, _ in expected]
        assert np.allclose([s for _, s in got], [s for _, s in expected], rtol=1e-12)
    assert pop._ranked(0, 1200.0) == [] and Popularity(60)._ranked(5, 0.0) == []


def test_hot_scores_forget_within_a_day_where_trending_remembers_the_month():
    pop = Popularity(half_life_s=30 * 86400, hot_half_life_s=86400)
    t = T0.timestamp()
    for _ in range(10):
        pop.add("old_hit", 1.0, t)
    pop.add("today", 1.0, t + 3 * 86400)
    pop.add("today", 1.0, t + 3 * 86400 - 86400)  # a day late: worth half today
    now = t + 3 * 86400
    assert [v for v, _ in pop.top(2, now)] == ["old_hit", "today"]
    assert [v for v, _ in pop.top(2, now, hot=True)] == ["today", "old_hit"]
    assert pop.scores_at(["today", "old_hit", "missing"], now, hot=True).tolist() == pytest.approx([1.5, 10 / 8, 0.0])
    assert pop.top_score(now, hot=True) == pytest.approx(1.5)
    merged = Popularity(half_life_s=30 * 86400, hot_half_life_s=86400)
    merged.replace("today", [pop.row("today")[:3] + (pop.row("today")[3],)])
    assert merged.row("today") == pytest.approx(pop.row("today"))


def test_covisitation_is_symmetric():
    cov = CoVisitation()
    cov.add("c", ("a", "b"))
    cov.add("d", ("c",))
    assert dict(cov.neighbours("c", 5)) == {"a": 1.0, "b": 1.0, "d": 1.0}
    assert cov.neighbours("a", 5) == [("c", 1.0)]


def test_a_full_row_keeps_its_strongest_neighbours_ties_in_the_order_they_came():
    cov = CoVisitation(max_neighbours=2)
    cov.add("a", ("x",))
    cov.add("a", ("x", "y"))  # a: x 2, y 1
    changed = cov.add("a", ("z", "w", "q"))  # a: x 2, y z w q 1 -> past twice the cap: x and the first tie kept
    assert list(cov.counts["a"].items()) == [("x", 2.0), ("y", 1.0)]
    assert [(b, w) for a, b, w in changed if a == "a"] == [("z", 1.0), ("w", 1.0), ("q", 1.0), ("z", 0.0),
                                                            ("w", 0.0), ("q", 0.0)]
    assert cov.counts["q"] == {"a": 1.0}  # the other side's row keeps its pair


@pytest.mark.parametrize("table", [lambda: CoVisitation(max_neighbours=3), lambda: Transitions(max_neighbours=3, steps=4)])
def test_a_flush_marks_exactly_the_pairs_an_update_reports(table):
    """The flush's dirty sets (the path events take) hold every pair the returned changes name, trims included,
    and both tables end with the same rows."""
    rng = np.random.default_rng(3)
    reported, marked = table(), table()
    dirty: defaultdict[str, set[str]] = defaultdict(set)
    expected: defaultdict[str, set[str]] = defaultdict(set)
    history: list[str] = []
    for _ in range(300):
        item = f"v{rng.integers(12)}"
        weight = float(rng.choice([1.0, 1.5, 0.65]))
        for a, b, _ in reported.add(item, tuple(history[-5:]), weight):
            expected[a].add(b)
        assert marked.add(item, tuple(history[-5:]), weight, dirty=dirty) == []
        history.append(item)
    assert dirty == expected
    assert {a: list(row.items()) for a, row in marked.counts.items()} == \
        {a: list(row.items()) for a, row in reported.counts.items()}


@pytest.fixture
def recommender(tmp_path):
    store = EdgeVectorStore(tmp_path / "videos", DIM)
    cat = Catalogue(store)
    now = T0.timestamp()
    for i in range(DIM):
        for j in range(3):  # three videos per direction, slightly apart
            vec = basis(i) + 0.05 * j * basis((i + 1) % DIM)
            cat.add(VideoInfo(f"v{i}-{j}", f"topic{i}", f"creator{j}", now - 86400 * 3, None, f"video {i}-{j}"), vec)
    cat.add(VideoInfo("v0-copy", "topic0", "c9", now - 86400 * 3, "v0-0", "copy"), basis(0))
    settings = RecommenderSettings(state_dir=tmp_path / "state", candidates_per_source=30)
    rec = Recommender(settings, cat, "watch.events")
    yield rec
    rec.close()
    store.close()


def test_cold_user_gets_trending_and_new_items_with_reasons(recommender):
    rec = recommender
    rec.apply(ev("other", "v3-0", "like"), 0)
    items = rec.feed("nobody", 5, now=T0.timestamp())
    assert items and items[0].video_id == "v3-0" and items[0].reason == "trending in topic3"
    assert rec.user("nobody").is_cold


def test_todays_hit_reaches_the_feed_as_popular_today_though_the_months_trending_is_full(recommender, tmp_path):
    settings = RecommenderSettings(state_dir=tmp_path / "state5", candidates_per_source=5)
    rec = Recommender(settings, recommender.catalogue, "watch.events")
    try:
        for n, video in enumerate(f"v{i}-{j}" for i in range(4) for j in range(2)):  # the month's trending
            for u in range(3):
                rec.apply(ev(f"then{n}-{u}", video, "like", ts=T0 - timedelta(days=20)), 0)
        rec.apply(ev("today", "v5-2", "like", ts=T0 - timedelta(hours=1)), 0)  # once, an hour ago
        now = T0.timestamp()
        assert "v5-2" not in [v for v, _ in rec.popularity.top(5, now)]
        assert rec.popularity.top(1, now, hot=True)[0][0] == "v5-2"
        reasons = {i.video_id: i.reason for i in rec.feed("nobody", 20, now=now)}
        assert reasons.get("v5-2") == "popular today in topic5", reasons  # creator2: under the cap
    finally:
        rec.close()


def test_feed_follows_taste_and_dislike_pushes_similar_down(recommender):
    rec = recommender
    rec.apply(ev("u", "v0-0", "like"), 0)
    top = [c.video_id for c in rec.feed("u", 3, now=T0.timestamp())]
    assert top[0].startswith("v0-") and "v0-0" not in top and "v0-copy" not in top
    assert rec.feed("u", 3, now=T0.timestamp())[0].reason == "similar to v0-0"
    before = {c.video_id: c.score for c in rec.feed("u", 20, now=T0.timestamp())}
    rec.apply(ev("u", "v0-1", "dislike"), 0)
    after = {c.video_id: c.score for c in rec.feed("u", 20, now=T0.timestamp())}
    assert "v0-1" in before and "v0-1" not in after, "a disliked video leaves the feed"
    assert after["v0-2"] < before["v0-2"], "and videos like it score lower"


def test_state_and_offsets_persist_together(recommender, tmp_path):
    rec = recommender
    rec.assign(0)
    rec.apply(ev("u", "v1-0", "like"), 0)
    rec.commit(0, 42)
    store = PartitionStore(tmp_path / "state", "watch.events", 0)
    try:
        assert store.next_offset() == 42
        assert rec.users_of(store.load())["u"].recent_positive == ["v1-0"]
        assert [row[0] for row in store.load().popularity] == ["v1-0"]
    finally:
        store.close()


def test_a_failed_write_keeps_the_changes_for_the_next_one(recommender, tmp_path):
    rec = recommender
    rec.assign(0)
    rec.apply(ev("u", "v2-0", "like"), 0)
    snap = rec.snapshot(0, 7)
    rec.partitions[0].store.db.close()  # the disk goes away
    with pytest.raises(Exception):
        snap.write()
    snap.restore()
    rec.partitions[0].store = PartitionStore(tmp_path / "state", "watch.events", 0)
    rec.commit(0, 7)
    store = PartitionStore(tmp_path / "state", "watch.events", 0)
    try:
        assert store.next_offset() == 7 and "u" in rec.users_of(store.load())
    finally:
        store.close()


def test_a_candidate_has_the_same_features_among_few_or_many(recommender):
    """Learning sees a positive among ~10 sampled videos, the feed ranks it among hundreds: the
    features must not depend on which other candidates are in the list."""
    from services.recommender.core.features import FEATURES, candidate_features
    from services.recommender.core.feed import FeedContext

    rec = recommender
    for n, (user, video) in enumerate([("a", "v1-0"), ("a", "v1-1"), ("b", "v1-0"), ("b", "v2-0"), ("b", "v1-2"),
                                       ("c", "v1-1"), ("c", "v3-0"), ("a", "v2-1")]):
        rec.apply(ev(user, video, event_id=f"e{n}", ts=T0 + timedelta(minutes=n)), 0)
    st = rec.partitions[0]

    def context():
        return FeedContext("a", st.users["a"], 10, T0.timestamp() + 3600, rec.catalogue, st.popularity, st.covisit,
                           rec.prior)

    ids = rec.catalogue.ids
    few = candidate_features(context(), ["v1-2", "v2-0", "v0-0"])
    many = candidate_features(context(), ids)
    rows = [ids.index(v) for v in ("v1-2", "v2-0", "v0-0")]
    assert few.shape == (3, len(FEATURES))
    assert np.allclose(few, many[rows])
    assert few[0, FEATURES.index("covisit")] > 0, "a video co-visited with the user's items has votes"


def test_topic_share_is_the_share_of_recent_positives_in_the_candidates_topic(recommender):
    """Computed over the catalogue's topic column: recent items without a topic count in the denominator,
    a candidate without a topic gets 0."""
    from services.recommender.core.features import FEATURES, candidate_features
    from services.recommender.core.feed import FeedContext

    rec = recommender
    rec.catalogue.add(VideoInfo("untitled", None, "c8", T0.timestamp(), None, ""), basis(5))
    for n, video in enumerate(["v1-0", "v1-1", "v2-0", "untitled"]):
        rec.apply(ev("a", video, event_id=f"e{n}", ts=T0 + timedelta(minutes=n)), 0)
    st = rec.partitions[0]
    ctx = FeedContext("a", st.users["a"], 10, T0.timestamp() + 3600, rec.catalogue, st.popularity, st.covisit, rec.prior)
    x = candidate_features(ctx, ["v1-2", "v2-1", "v3-0", "untitled"])[:, FEATURES.index("topic")]
    assert x.tolist() == [2 / 4, 1 / 4, 0.0, 0.0]


def test_catalogue_rows_keep_each_video_and_follow_a_new_vector(tmp_path):
    store = EdgeVectorStore(tmp_path / "videos", DIM)
    cat = Catalogue(store)
    try:
        for i in range(1500):  # past the first block of rows: the matrix grows and keeps what it held
            cat.add(VideoInfo(f"v{i}", f"t{i % 3}", "c", float(i), None, ""), basis(i % DIM) + basis((i + 1) % DIM))
        cat.add(VideoInfo("v7", "t1", "c", 7.0, None, ""), basis(2))
        assert len(cat) == len(cat.vectors) == 1500 and "v1499" in cat and "v1500" not in cat
        assert np.allclose(cat.vector("v7"), basis(2)) and cat.vector("missing") is None
        assert np.allclose(cat.vectors.take(["v3", "v1499"]), [cat.vectors["v3"], cat.vectors["v1499"]])
        assert np.allclose(cat.vectors["v3"], (basis(3) + basis(4)) / np.sqrt(2))
        assert cat.created[cat.vectors.rows(["v0", "v1234"])].tolist() == [0.0, 1234.0]
        assert list(cat.vectors)[:3] == ["v0", "v1", "v2"]
    finally:
        store.close()


def test_scorer_weights_are_one_mapping_keyed_by_feature_name():
    from services.recommender.core.features import FEATURES
    from shared.settings import SCORER_WEIGHTS

    assert list(SCORER_WEIGHTS) == list(FEATURES), "the prior names every ranking feature, in order"
    settings = RecommenderSettings(scorer_weights={"topic": 0.7})
    assert settings.scorer_weights == {**SCORER_WEIGHTS, "topic": 0.7}, "names left out keep their default"
    with pytest.raises(ValueError, match="unknown scorer features"):
        RecommenderSettings(scorer_weights={"popularty": 1.0})


def test_users_stored_as_steps_restore_to_the_same_bits(recommender, tmp_path):
    """Deltas store each user's steps since the previous flush, not their vectors; a restore applies them again
    to the rows of the latest full snapshot and holds every user exactly as the live state does."""
    rec = recommender
    rec.assign(0)
    rng = np.random.default_rng(7)
    videos = [f"v{i}-{j}" for i in range(DIM) for j in range(3)] + ["not-in-the-catalogue"]
    actions = ["complete", "like", "play", "skip", "dislike", "impression", "progress", "share"]
    for n in range(600):
        user = f"u{rng.integers(12)}"
        event = ev(user, videos[rng.integers(len(videos))], actions[rng.integers(len(actions))],
                   ts=T0 + timedelta(minutes=int(n)), session_id=f"s{n // 40}", event_id=f"e{rng.integers(550)}",
                   watch_ms=int(rng.integers(0, 10000)))
        rec.apply(event, 0)  # some event ids repeat: duplicates change nothing and store nothing
        if n % 50 == 49:
            rec.snapshot(0, n + 1, full=n == 249).write()  # deltas, one full snapshot half way
    rows = rec.partitions[0].store.load()
    assert rows.user_steps and rows.users, "steps after the snapshot's rows"
    assert all(len(steps) <= 50 * 10 for _, steps in rows.user_steps)
    live = rec.partitions[0].users
    back = Recommender(rec.settings, rec.catalogue, "watch.events")
    restored = back.install(1, rows).users
    assert restored.keys() == live.keys()
    for uid, user in live.items():
        other = restored[uid]
        for name in ("long", "short", "negative"):
            a, b = getattr(user, name), getattr(other, name)
            assert (a is None) == (b is None) and (a is None or a.tobytes() == b.tobytes()), (uid, name)
        assert user.to_row() == other.to_row()


def test_a_failed_write_stores_the_users_it_held_whole_next_time(recommender):
    rec = recommender
    rec.assign(0)
    rec.apply(ev("u", "v1-0", "like"), 0)
    snap = rec.snapshot(0, 1)
    assert [u for u, _ in snap.rows.user_steps] == ["u"] and not snap.rows.users
    snap.restore()  # as after a failed write: the steps it held are stored nowhere
    rec.apply(ev("u", "v2-0", "like", event_id="later"), 0)
    again = rec.snapshot(0, 2)
    assert [row[0] for row in again.rows.users] == ["u"] and not again.rows.user_steps
    assert again.rows.users[0][1:] == rec.partitions[0].users["u"].to_row()


def test_a_video_embedded_again_with_other_values_makes_the_next_flush_whole(recommender):
    """Stored steps are applied again with the catalogue's vectors: once a video's vector changes, every
    partition's next flush is a full snapshot, so no restore applies an old step with the new vector."""
    from services.recommender.handlers import add_video
    from shared.events import VideoEmbedded

    rec = recommender
    rec.assign(0)
    rec.apply(ev("u", "v1-0", "like"), 0)
    rec.commit(0, 1)
    assert not rec.wants_full(0) and rec.partitions[0].store.load().user_steps
    same = VideoEmbedded(video_id="v1-0", vector=basis(1).tolist(), model_version="m", creator_id="creator0",
                         duration_s=10, topic="topic1")
    add_video(rec, same, set())
    assert not rec.wants_full(0), "embedded again with the same values: nothing to do"
    add_video(rec, same.model_copy(update={"vector": basis(2).tolist()}), set())
    assert rec.wants_full(0)
    rec.commit(0, 1)
    assert not rec.wants_full(0)
    rows = rec.partitions[0].store.load()
    assert not rows.user_steps and [row[0] for row in rows.users] == ["u"]
    back = Recommender(rec.settings, rec.catalogue, "watch.events").install(1, rows).users["u"]
    assert back.to_row() == rec.partitions[0].users["u"].to_row()


def test_a_user_with_many_steps_since_the_last_flush_is_stored_whole(recommender):
    from services.recommender.engine import MAX_STEPS

    rec = recommender
    rec.assign(0)
    for n in range(MAX_STEPS + 1):
        rec.apply(ev("heavy", f"v{n % DIM}-{n % 3}", ts=T0 + timedelta(seconds=n)), 0)
    rec.apply(ev("light", "v0-0"), 0)
    snap = rec.snapshot(0, 1)
    assert [row[0] for row in snap.rows.users] == ["heavy"] and [u for u, _ in snap.rows.user_steps] == ["light"]


def test_a_local_file_that_cannot_be_read_is_moved_aside_and_the_partition_starts_empty(recommender, tmp_path):
    """``Recommender.assign`` (replays, the engine used alone) opens the file as the service does: a garbled one is
    a cache gone bad, moved aside and counted, not an error that stops the caller."""
    from services.recommender import metrics

    settings = RecommenderSettings(state_dir=tmp_path / "garbled")
    settings.state_dir.mkdir()
    (settings.state_dir / "watch.events-2.sqlite").write_bytes(b"not a database" * 500)
    rejected = metrics.state_file_rejected._value.get()
    rec = Recommender(settings, recommender.catalogue, "watch.events")
    try:
        assert rec.assign(2) is None, "nothing was read: the partition's events are read again from the start"
        assert metrics.state_file_rejected._value.get() == rejected + 1
        assert list(settings.state_dir.glob("watch.events-2.sqlite.unreadable-*"))
        rec.apply(ev("someone", "v1-0", "like"), 2)
        assert rec.user("someone").recent_positive == ["v1-0"], "the fresh file takes the partition's events"
    finally:
        rec.close()


def test_the_long_term_and_session_sources_search_once_when_the_two_vectors_are_one(recommender):
    """After a user's first positive both vectors are that video's: one catalogue search serves both sources,
    with the same candidates; once the vectors part, each source searches with its own."""
    rec = recommender
    calls, search = [], rec.catalogue.search

    def counted(vector, *args, **kwargs):
        calls.append(np.array(vector, copy=True))
        return search(vector, *args, **kwargs)

    rec.catalogue.search = counted
    stages: dict[str, int] = {}
    rec.apply(ev("u", "v0-0", "like"), 0)
    rec.feed("u", 5, lambda stage, s, n_in, n_out: stages.setdefault(stage, n_out), now=T0.timestamp())
    assert len(calls) == 1
    assert stages["long_term"] == stages["session"] > 0
    rec.apply(ev("u", "v1-0", "like", ts=T0 + timedelta(seconds=5)), 0)
    assert not np.array_equal(rec.user("u").long, rec.user("u").short)
    calls.clear()
    rec.feed("u", 5, now=T0.timestamp() + 5)
    assert len(calls) == 2 and not np.array_equal(calls[0], calls[1])
