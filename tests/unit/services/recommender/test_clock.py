"""Time is bounded: no event moves a shared clock (popularity decay, the feed's now) past the wall
clock, and the decay arithmetic is safe for any time it is given (issue 14, finding 2)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from services.recommender.core.catalogue import Catalogue, VideoInfo
from services.recommender.core.stats import Popularity
from services.recommender.engine import Recommender
from shared.events import WatchEvent
from shared.settings import RecommenderSettings
from shared.vectors import EdgeVectorStore

DIM = 4
WALL = datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp()
FAR = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def far_future_event(user: str, video: str) -> WatchEvent:
    """An event as an older producer could have written it: built without the model's checks."""
    return WatchEvent.model_construct(user_id=user, video_id=video, action="like", event_id=f"{user}-{video}-far",
                                      ts=FAR, watch_ms=0, duration_ms=None, session_id=None, schema_version=1)


def event(user: str, video: str, n: int) -> WatchEvent:
    return WatchEvent(user_id=user, video_id=video, action="like", event_id=f"{user}-{video}-{n}",
                      ts=datetime.fromtimestamp(WALL - 60 + n, UTC))


@pytest.fixture
def rec(tmp_path):
    store = EdgeVectorStore(tmp_path / "videos", DIM)
    cat = Catalogue(store)
    for i in range(8):
        vec = np.zeros(DIM, np.float32)
        vec[i % DIM] = 1
        cat.add(VideoInfo(f"v{i}", f"topic{i % 2}", "c", WALL - 3600, None, f"video {i}"), vec)
    rec = Recommender(RecommenderSettings(state_dir=tmp_path / "state"), cat, "watch.events", clock=lambda: WALL)
    yield rec
    rec.close()
    store.close()


def test_a_far_future_event_does_not_move_the_shared_clock(rec):
    rec.apply(far_future_event("mallory", "v0"), 0)
    assert rec.popularity.now <= WALL and rec.partitions[0].popularity.now <= WALL
    for n in range(200):  # later events of everyone go on being applied (they overflowed before)
        rec.apply(event(f"u{n % 7}", f"v{1 + n % 7}", n), n % 2)
    trending = [v for v, _ in rec.popularity.top(8)]
    assert trending[0] != "v0", "one event from the future does not own trending"
    assert math.isfinite(rec.popularity.top_score())


def test_the_feed_clock_is_the_wall_clock_and_fresh_videos_still_show(rec):
    rec.apply(far_future_event("mallory", "v1"), 0)
    items = rec.feed("newcomer", 8)
    reasons = {c.reason for c in items}
    assert any(r.startswith(("new", "recently uploaded")) for r in reasons), reasons


def test_a_stored_row_from_the_future_is_brought_back_to_the_wall_clock(rec, tmp_path):
    rec.apply(far_future_event("mallory", "v2"), 0)
    st = rec.partitions[0]
    st.popularity.scores["v2"] = (1.0, FAR.timestamp())  # as an unbounded build would have stored it
    st.dirty_videos.add("v2")
    rec.advance(0, 1)
    rec.snapshot(0).write()
    rec.revoke(0)
    rec.assign(0)
    assert rec.partitions[0].popularity.scores["v2"][1] <= WALL
    assert rec.popularity.now <= WALL


@pytest.mark.parametrize("at,now", [(FAR.timestamp(), WALL), (WALL, FAR.timestamp()), (1e300, 0.0), (0.0, 1e300)])
def test_decay_arithmetic_never_overflows(at, now):
    pop = Popularity(half_life_s=3600)
    pop.add("a", 1.0, at)
    pop.add("b", 2.0, now)
    pop.add("a", 1.0, now)
    for value in (pop.top_score(now), pop.score("a", now), *pop.scores_at(["a", "b"], now)):
        assert not math.isnan(value) and value >= 0
