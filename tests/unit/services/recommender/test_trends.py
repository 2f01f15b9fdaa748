"""Trends: views per topic and concept in time buckets, what counts as rising, and the counts kept with the
partition's state (local file, changelog, the merged view of every partition); each video's first-day views, kept
the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.recommender.changelog import decode_row, encode_rows
from services.recommender.core.catalogue import VideoInfo
from services.recommender.core.global_stats import GlobalStats
from services.recommender.core.stats import TrendCounts
from services.recommender.core.trends import keys_of, rising, window_sums
from services.recommender.engine import Recommender
from services.recommender.rows import Rows
from services.recommender.state_store import PartitionStore
from shared.events import WatchEvent
from shared.settings import RecommenderSettings

B = TrendCounts.BUCKET_S


def test_counts_fill_buckets_and_expire_old_ones_when_a_new_bucket_opens():
    t = TrendCounts(keep=3)
    t.add(["topic:a"], 10 * B)
    t.add(["topic:a"], 10 * B + 5)
    assert t.counts["topic:a"] == {"10": 2.0}
    changed = t.add(["topic:a"], 13 * B)  # bucket 13: bucket 10 is 3 buckets old, dropped
    assert ("topic:a", "10", 0.0) in changed and t.counts["topic:a"] == {"13": 1.0}


def test_window_sums_and_what_counts_as_rising():
    row = {"8": 5.0, "9": 5.0, "10": 30.0, "11": 20.0}
    assert window_sums(row, 11, 2) == (50, 10)
    now = 12 * B + 1  # bucket 12 is filling: the window ends at bucket 11
    counts = {"topic:up": row, "topic:flat": {"10": 25.0, "8": 25.0}, "concept:few": {"11": 10.0},
              "concept:new": {"11": 40.0, "10": 1.0}}
    got = rising(counts, now, window_s=2 * B, bucket_s=B)
    assert [(t.kind, t.name) for t in got] == [("concept", "new"), ("topic", "up")]
    assert got[1].now == 50 and got[1].before == 10 and got[1].z == round(40 / 10 ** 0.5, 2)
    assert rising(counts, now, 2 * B, B, min_events=100) == []


def test_keys_are_the_topic_and_the_strongest_concepts():
    assert keys_of("cats", ("tabby", "lynx", "tiger", "egyptian cat")) == \
        ["topic:cats", "concept:tabby", "concept:lynx", "concept:tiger"]
    assert keys_of(None, ()) == []


def stored_and_merged(rec: Recommender, next_offset: int) -> GlobalStats:
    """Each partition of ``rec`` stored whole in its local file, and read back through the changelog's encoding
    into the view every replica merges."""
    merged = GlobalStats(3600, rec.prior)
    for p in sorted(rec.partitions):
        snap = rec.snapshot(p, next_offset=next_offset, full=True)
        snap.write()
        back = Rows()
        for key, value in encode_rows(snap.rows):
            decode_row(key, value, back)
        merged.apply(p, back, full=True)
    return merged


def test_trend_counts_are_stored_restored_and_merged(catalogue, tmp_path):
    now = datetime.now(UTC)
    for info in list(catalogue.info.values()):  # the fixture's videos, with concepts
        catalogue.info[info.video_id] = VideoInfo(info.video_id, info.topic, info.creator_id, info.created_at, None,
                                                  info.title, ("tabby",))
    rec = Recommender(RecommenderSettings(state_dir=tmp_path / "state"), catalogue, "watch.events")
    rec.assign(0)
    rec.assign(1)
    for i in range(30):
        rec.apply(WatchEvent(user_id=f"u{i}", video_id=f"v{i % 12}", action="like",
                             ts=now - timedelta(minutes=i % 3)), i % 2)
    views = sum(rec.trends.counts["concept:tabby"].values())
    assert views == 30 and sum(sum(r.values()) for k, r in rec.trends.counts.items() if k.startswith("topic:")) == 30

    merged = stored_and_merged(rec, 15)
    assert merged.trends.counts == rec.trends.counts  # the changelog's view: every partition summed

    expected = {k: dict(r) for k, r in rec.trends.counts.items()}
    rec.close()
    again = Recommender(RecommenderSettings(state_dir=tmp_path / "state"), catalogue, "watch.events")
    again.assign(0)
    again.assign(1)
    assert again.trends.counts == expected  # the local files
    assert PartitionStore(tmp_path / "state", "watch.events", 0).load().trends
    again.close()


def test_first_day_views_count_only_a_videos_first_day_and_are_stored_restored_and_merged(catalogue, tmp_path):
    """Each video's views in its first 24 hours: what the first-day estimate of similar new videos averages."""
    published = datetime.now(UTC) - timedelta(days=3)
    for info in list(catalogue.info.values()):
        catalogue.info[info.video_id] = VideoInfo(info.video_id, info.topic, info.creator_id, published.timestamp(),
                                                  None, info.title)
    rec = Recommender(RecommenderSettings(state_dir=tmp_path / "state"), catalogue, "watch.events")
    rec.assign(0)
    rec.assign(1)
    hours = [1, 5, 23, 25, 47, -1]  # after publication: the first three are its first day, the rest are not
    for i, h in enumerate(hours):
        rec.apply(WatchEvent(user_id=f"u{i}", video_id="v0", action="like", ts=published + timedelta(hours=h)), i % 2)
    rec.apply(WatchEvent(user_id="u9", video_id="v1", action="skip", ts=published + timedelta(hours=1)), 0)
    assert rec.first_views.views("v0") == 3 and rec.first_views.views("v1") == 0, "engaged views only"

    merged = stored_and_merged(rec, 10)
    assert merged.first_views.views("v0") == 3  # the changelog's view: both partitions summed
    rec.close()
    again = Recommender(RecommenderSettings(state_dir=tmp_path / "state"), catalogue, "watch.events")
    again.assign(0)
    again.assign(1)
    assert again.first_views.views("v0") == 3  # the local files
    again.close()
