"""Creator insights on the recommender: reach through the users' Qdrant collection against a brute-force count,
the bar, favourite topics, suggestions, and the gateway's privacy floor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from services.recommender.core.catalogue import Catalogue, VideoInfo
from services.recommender.core.reach import (
    NO_BAR,
    brute_force,
    favourite_topic,
    first_day_views,
    kth_similarity,
    suggestions,
    tally,
    words,
)
from services.recommender.engine import Recommender
from services.recommender.insights import insights_part
from services.recommender.reach_index import ReachIndex
from shared.events import WatchEvent
from shared.insights import FirstDayPart, InsightsPart, ReachPart, combine, rounded, topics_shown
from shared.settings import RecommenderSettings
from shared.vectors import EdgeVectorStore

DIM = 16
NOW = datetime.now(UTC)


def test_the_bar_is_the_kth_best_similarity():
    assert kth_similarity([0.1, 0.9, 0.5, 0.7], 2) == 0.7
    assert kth_similarity([0.3, 0.2], 5) == 0.2  # fewer videos than k: the lowest
    assert kth_similarity([], 3) == NO_BAR


def test_favourite_topic_is_the_most_watched_ties_to_the_latest():
    topics = {"a": "x", "b": "y", "c": "x", "d": "y", "e": None}
    assert favourite_topic(["a", "b", "c"], topics) == "x"
    assert favourite_topic(["a", "b"], topics) == "y"  # one each: y was watched last
    assert favourite_topic(["e", "zz"], topics) is None


def test_tally_counts_hits_that_clear_their_own_bar():
    hours = [0] * 24
    hours[20] = 3
    hits = [(0.9, {"bar": 0.8, "topic": "x", "hours": hours}), (0.5, {"bar": 0.6, "topic": "x"}),
            (0.7, {"bar": 0.7, "topic": "y", "hours": hours})]
    got = tally(hits, active_users=10)
    assert (got.total, got.by_topic, got.hours[20], got.active_users) == (2, {"x": 1, "y": 1}, 6, 10)


def test_suggestions_weigh_similarity_and_engagement_with_evidence():
    similar = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
    tags = {"a": ["Cats", "funny"], "b": ["cats"], "c": ["dogs"]}
    titles = {"a": "The funniest cats ever", "b": "Cats at night", "c": "Dogs"}
    ranked_tags, title_words = suggestions(similar, tags, titles, {"a": 100, "b": 10, "c": 1000})
    assert ranked_tags[0].text == "cats" and ranked_tags[0].evidence == ("a", "b")
    assert "dogs" in [s.text for s in ranked_tags]
    assert [s.text for s in ranked_tags].index("dogs") > 0  # a far video counts for little, however watched
    assert title_words[0].text == "cats"
    assert suggestions(similar, tags, titles, {})[0] == []  # nothing watched: no evidence of what works
    assert words("The 10 BEST cats, and dogs!") == ["cats", "dogs"]


# ---------------------------------------------------------------- through Qdrant, against brute force


def unit(v):
    return v / np.linalg.norm(v)


@pytest.fixture
def platform(tmp_path):
    """Two topics (x, y) of 30 videos each around their own centre; 40 users like x, 15 like y."""
    rng = np.random.default_rng(3)
    centres = {"x": unit(rng.normal(size=DIM)), "y": unit(rng.normal(size=DIM))}
    stores = [EdgeVectorStore(tmp_path / "videos", DIM), EdgeVectorStore(tmp_path / "users", DIM)]
    cat = Catalogue(stores[0])
    for topic, centre in centres.items():
        for i in range(30):
            cat.add(VideoInfo(f"{topic}{i}", topic, f"c-{topic}", 1e9, None, f"{topic} clip {i}",
                              tags=(topic, f"{topic}-fans")), unit(centre + 0.6 * rng.normal(size=DIM)))
    settings = RecommenderSettings(state_dir=tmp_path / "state", insights_top_k=10)
    rec = Recommender(settings, cat, "watch.events")
    rec.reach = ReachIndex(stores[1], settings.insights_top_k)
    for topic, users in (("x", 40), ("y", 15)):
        for u in range(users):
            for j in rng.choice(30, 5, replace=False):
                hour = NOW - timedelta(hours=int(rng.integers(0, 3)) + (0 if topic == "x" else 12))
                rec.apply(WatchEvent(user_id=f"{topic}-user{u}", video_id=f"{topic}{j}", action="like", ts=hour),
                          u % 4)  # a user's events all go to one partition, as keyed by the user id
    yield rec, centres, rng
    for s in stores:
        s.close()


def brute_reach(rec: Recommender, video: np.ndarray, k: int) -> int:
    ids = list(rec.catalogue.vectors)
    videos = np.stack([rec.catalogue.vectors[v] for v in ids])
    users = np.stack([st.users[u].long for st in rec.partitions.values() for u in st.users])
    sims = (users / np.linalg.norm(users, axis=1, keepdims=True)) @ (videos / np.linalg.norm(videos, axis=1,
                                                                                             keepdims=True)).T
    bars = -np.sort(-sims, axis=1)[:, k - 1]
    return int(brute_force(video, users, bars).sum())


def test_reach_through_qdrant_equals_brute_force_and_follows_the_audience(platform):
    rec, centres, rng = platform
    assert rec.reach.refresh(rec, 1000) == 55 and not rec.reach.pending
    since = NOW.timestamp() - 86400
    counts = {}
    for topic, centre in centres.items():
        video = unit(centre + 0.3 * rng.normal(size=DIM))  # a new video: not in the catalogue
        got = rec.reach.count(video, range(4), since, exact=True)
        counts[topic] = got.total
        assert got.total == brute_reach(rec, video, 10)
        assert got.active_users == 55
        assert max(got.by_topic, key=got.by_topic.get) == topic
    assert counts["x"] > counts["y"] > 0


def test_reach_counts_only_the_partitions_asked_for_and_the_active_window(platform):
    rec, centres, _ = platform
    rec.reach.refresh(rec, 1000)
    everyone = rec.reach.count(centres["x"], range(4), 0.0)
    halves = [rec.reach.count(centres["x"], ps, 0.0) for ps in ([0, 1], [2, 3])]
    assert sum(h.total for h in halves) == everyone.total
    assert sum(h.active_users for h in halves) == everyone.active_users == 55
    assert rec.reach.count(centres["x"], [], 0.0).active_users == 0
    assert rec.reach.count(centres["x"], range(4), NOW.timestamp() + 3600).total == 0  # nobody active since


def test_insights_part_and_the_privacy_floor(platform):
    rec, _, _ = platform
    rec.reach.refresh(rec, 1000)
    part = insights_part(rec, "x3", [0, 1, 2, 3], NOW.timestamp())
    assert part is not None and part.creator_id == "c-x" and part.reach.total > 0
    assert insights_part(rec, "nope", [0], NOW.timestamp()) is None
    assert part.tags == [] or part.tags[0].text in ("x", "x-fans")  # no engagement yet: maybe no evidence
    published = combine([part], floor=min(5, part.reach.total), partitions=4)
    assert published.reach.users == part.reach.total and published.partitions_missing == []
    assert published.best_time.hours_utc  # the x users' hours
    assert combine([part], floor=1000, partitions=4).reach.users is None  # the audience is under the floor
    assert "privacy floor" in combine([part], floor=1000, partitions=4).reach.reason


def test_combine_sums_replicas_once_per_partition_and_says_what_is_missing():
    def part(total, active, partitions, topic_counts):
        return InsightsPart(video_id="v", creator_id="c", reach=ReachPart(total=total, active_users=active,
                                                                         by_topic=topic_counts, partitions=partitions))
    a, b = part(30, 100, [0, 1], {"x": 25, "y": 5}), part(12, 50, [2], {"x": 4, "y": 8})
    both = combine([a, b, part(99, 99, [1], {})], floor=10, partitions=4)  # [1] again: counted once
    assert both.reach.users == 42 and both.reach.active_users == 150 and both.partitions_missing == [3]
    assert both.reach.by_topic == {"x": 29, "y": 13}
    small = combine([part(3, 100, [0], {"x": 3})], floor=10, partitions=1)
    assert small.reach.users is None and "withheld" in small.reach.reason and "3" not in small.reach.reason
    nobody = combine([part(0, 0, [0], {})], floor=10, partitions=1)
    assert nobody.reach.users == 0 and "no users active" in nobody.reach.reason


def test_first_day_views_average_the_most_similar_videos_past_their_first_day():
    day = 86400.0
    now = 10 * day
    similar = [("new", 0.99), ("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6)]
    created = {"new": now - 3600, "a": now - 2 * day, "b": now - 5 * day, "c": now - day, "d": now - 9 * day}
    views = {"a": 10.0, "b": 30.0, "c": 50.0, "d": 1000.0}.get
    got = first_day_views(similar, created, lambda v: views(v, 0.0), now, day, peers=3)
    assert got is not None and got.peers == ("a", "b", "c"), "'new' is still in its first day; d is the 4th"
    assert got.views == pytest.approx(30.0) and got.total == 90.0
    assert first_day_views([("new", 0.9)], created, lambda v: 0.0, now, day) is None, "no peer has had its day"
    assert first_day_views(similar, {}, lambda v: 0.0, now, day) is None, "videos the catalogue does not know"


def test_the_first_day_estimate_is_published_from_any_replica_and_withheld_under_the_floor():
    def part(views: float, total: float) -> InsightsPart:
        return InsightsPart(video_id="v", creator_id="c", reach=ReachPart(total=0, active_users=0, partitions=[0]),
                            first_day=FirstDayPart(views=views, total=total, peers=["a", "b"]))

    shown = combine([InsightsPart(video_id="v", creator_id="c", reach=ReachPart(total=0, partitions=[1])),
                     part(12.5, 25)], floor=10, partitions=2).first_day_views
    assert shown.views == 12.5 and shown.peers == ["a", "b"] and "2 most similar" in shown.reason
    hidden = combine([part(2.5, 5)], floor=10, partitions=1).first_day_views
    assert hidden.views is None and hidden.peers == [] and "privacy floor" in hidden.reason
    assert "5" not in hidden.reason.replace("floor of 10", ""), "the reason never states the figure"
    none = combine([InsightsPart(video_id="v", creator_id="c", reach=ReachPart(total=0, partitions=[0]))],
                   floor=10, partitions=1).first_day_views
    assert none.views is None and "first day" in none.reason


def test_the_topics_left_out_never_add_up_to_a_count_under_the_floor():
    # 25 + 8 = 33: with "x" shown, total minus x would publish the 8 users of "y" (and of nothing else)
    assert topics_shown({"x": 25, "y": 8}, 33, floor=10) == {"(other topics)": 33}
    assert topics_shown({"x": 25, "y": 12, "z": 3}, 40, floor=10) == {"x": 25, "(other topics)": 15}
    assert topics_shown({"x": 25, "y": 12}, 37, floor=10) == {"x": 25, "y": 12}  # nothing left out
    assert topics_shown({"x": 25, "y": 12, "z": 3, "w": 5}, 45, floor=10) == {"x": 25, "(other topics)": 20}
    assert topics_shown({"x": 25, "y": 12, "z": 3, "w": 9}, 49, floor=10) == {"x": 25, "y": 12, "(other topics)": 12}
    for topics in ({"a": 40, "b": 11, "c": 10, "d": 4}, {"a": 10, "b": 10, "c": 1}, {"a": 3}, {}):
        total = sum(topics.values())
        if not total:
            continue
        shown = topics_shown(topics, max(total, 10), floor=10)
        assert all(n >= 10 for n in shown.values()) and sum(shown.values()) == max(total, 10)


def test_a_creators_view_rounds_the_user_counts_after_the_floor_is_applied_to_the_exact_ones():
    assert [rounded(n, 10) for n in (0, 1, 4, 14, 15, 25, 1234)] == [0, 10, 10, 10, 20, 30, 1230]
    assert rounded(1234, 1) == 1234

    def part(total, active, topic_counts):
        return InsightsPart(video_id="v", creator_id="c", reach=ReachPart(
            total=total, active_users=active, by_topic=topic_counts, partitions=[0], hours=[0] * 20 + [total] * 4))
    exact = combine([part(44, 1234, {"x": 31, "y": 13})], floor=10, partitions=1)
    assert (exact.reach.users, exact.reach.active_users, exact.reach.rounded_to) == (44, 1234, 1)
    assert exact.reach.events == 4 * 44, "the reached users' events, summed from their hours"
    creator = combine([part(44, 1234, {"x": 31, "y": 13})], floor=10, partitions=1, creator_round_to=10)
    assert (creator.reach.users, creator.reach.active_users, creator.reach.rounded_to) == (40, 1230, 10)
    assert creator.reach.events == 180
    assert creator.reach.by_topic == {"x": 30, "y": 10}
    assert "40 of 1230" in creator.reach.reason and "44" not in creator.reach.reason
    assert creator.best_time.hours_utc == [20, 21, 22] and "44" not in creator.best_time.reason
    # the floor reads the exact count: 9 reached users stay withheld though 9 would round to 10
    small = combine([part(9, 1234, {"x": 9})], floor=10, partitions=1, creator_round_to=10)
    assert small.reach.users is None and small.reach.active_users == 1230 and small.reach.events is None
    assert small.best_time.hours_utc == [] and "withheld" in small.best_time.reason


def test_a_creators_view_withholds_counts_while_a_partition_is_missing_and_rounds_the_first_day_mean():
    part = InsightsPart(video_id="v", creator_id="c", reach=ReachPart(total=44, active_users=1234, partitions=[0]),
                        first_day=FirstDayPart(views=12.34, total=37.0, peers=["a", "b", "c"]))
    platform = combine([part], floor=10, partitions=2)
    assert platform.reach.users == 44 and platform.partitions_missing == [1]  # a platform key sees the partial count
    assert platform.first_day_views.views == 12.34
    creator = combine([part], floor=10, partitions=2, creator_round_to=10)
    assert creator.reach.users is None and creator.reach.active_users is None and "[1]" in creator.reach.reason
    assert creator.reach.events is None
    assert creator.best_time.hours_utc == [] and creator.partitions_missing == [1]
    assert creator.first_day_views.views == 12.0 and "whole views" in creator.first_day_views.reason
