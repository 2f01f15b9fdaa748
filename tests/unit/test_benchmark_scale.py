"""The recommender scale-out benchmark (``benchmarks/recommender_scale.py``): it imports, and its pure helpers
build what its figures rest on."""

import numpy as np

from benchmarks.recommender_scale import (
    TOPICS,
    differs,
    feed_routes,
    main,
    partition_users,
    per_10k,
    spread,
    watch_events,
)
from services.recommender.rows import Rows
from shared.ownership import partition_for


def test_the_users_are_all_in_the_partition_and_each_has_its_share_of_events():
    users = partition_users(50, 2, 6)
    assert len(set(users)) == 50 and {partition_for(u, 6) for u in users} == {2}
    order = spread(users, 3, np.random.default_rng(0))
    assert sorted(order) == sorted(users * 3) and order != sorted(order)


def test_events_are_deterministic_and_mostly_of_the_users_topic():
    users = partition_users(20, 0, 6)
    videos = [f"v{i}" for i in range(95)]
    a = watch_events(spread(users, 10, np.random.default_rng(1)), videos, np.random.default_rng(2), first=7)
    b = watch_events(spread(users, 10, np.random.default_rng(1)), videos, np.random.default_rng(2), first=7)
    assert [e.model_dump() for e in a] == [e.model_dump() for e in b]
    assert a[0].event_id == "e7" and a[1].ts > a[0].ts and {e.video_id for e in a} <= set(videos)
    favourite = sum(int(e.video_id[1:]) % TOPICS == sum(map(ord, e.user_id)) % TOPICS for e in a)
    assert favourite > 0.75 * len(a)
    assert {"skip", "dislike", "like"} <= {e.action for e in a}


def test_helpers():
    assert per_10k(2.0, 5000) == 4.0
    assert differs(Rows(users=[("u", "{}", None, None, None)], next_offset=3), Rows(next_offset=3)) == ["users"]
    assert differs(Rows(covisit=[("a", {"b": 1.0})]), Rows(covisit=[("a", {"b": 1.0})])) == []
    text = ('# HELP x\nclipstream_gateway_feed_routes_total{outcome="owner"} 12.0\n'
            'clipstream_gateway_feed_routes_total{outcome="rerouted"} 1.0\nother 5\n')
    assert feed_routes(text) == {"owner": 12.0, "rerouted": 1.0}
    assert callable(main)
