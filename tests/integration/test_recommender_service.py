"""The recommender as a real process on the embedded broker: feeds follow watch events within a
poll, dislikes remove videos, bad input is handled as stated."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import numpy as np
import pytest

from benchmarks.recommender import histogram_buckets
from shared import topics
from shared.events import Concept, VideoEmbedded, WatchEvent
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from shared.search import QueryEncoder
from shared.settings import Settings
from tests.integration.conftest import publish, wait_for
from tests.recsys_data import T0, current_space, videos

pytestmark = pytest.mark.integration


def recommender_env(broker, root) -> dict:
    return {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_RECOMMENDER_STATE_DIR": str(root / "state"),
            "CLIPSTREAM_QDRANT_DATA_DIR": str(root / "qdrant"), "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "1000",
            "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "200", "CLIPSTREAM_RECOMMENDER_FRESH_WINDOW_S": "3600"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("recommender")
    with EmbeddedBroker(log_path=root / "broker.log") as broker:
        asyncio.run(publish(broker.bootstrap, topics.VIDEOS_EMBEDDED.name, videos(), "video_id"))
        proc = ServiceProcess("recommender", free_port(), env=recommender_env(broker, root),
                              log_path=root / "recommender.log")
        with proc:
            yield broker, proc


def feed(proc, user: str, k: int = 10) -> dict:
    resp = httpx.get(f"{proc.url}/v1/feed/{user}", params={"k": k}, timeout=10)
    resp.raise_for_status()
    return resp.json()


async def until(condition, what: str):
    holder = {}

    def check() -> bool:
        holder["value"] = condition()
        return bool(holder["value"])

    await wait_for(check, timeout_s=30, what=what)
    return holder["value"]


async def test_cold_start_then_watch_events_shape_the_feed(service):
    broker, proc = service
    cold = feed(proc, "new-user")
    assert cold["cold_start"] is True and cold["items"], "an unknown user gets a feed, not an error"
    assert all(i["reason"].startswith(("trending", "new", "recently uploaded")) for i in cold["items"])

    likes = [WatchEvent(user_id="alice", video_id=f"t2-v{j}", action="like", ts=T0 + timedelta(minutes=j))
             for j in range(3)]
    await publish(broker.bootstrap, topics.WATCH_EVENTS.name, likes, "user_id")
    items = await until(lambda: [i for i in feed(proc, "alice")["items"] if i["reason"].startswith("similar to")],
                        "alice's feed to follow her likes")
    top = feed(proc, "alice")["items"]
    assert top[0]["topic"] == "topic2" and not any(i["video_id"] in {"t2-v0", "t2-v1", "t2-v2"} for i in top)
    assert items[0]["reason"] in {f"similar to t2-v{j}" for j in range(3)}

    target = top[0]["video_id"]
    before = {i["video_id"]: i["score"] for i in feed(proc, "alice", 30)["items"]}
    await publish(broker.bootstrap, topics.WATCH_EVENTS.name,
                  [WatchEvent(user_id="alice", video_id=target, action="dislike", ts=T0 + timedelta(minutes=9))], "user_id")
    after = await until(lambda: (f := {i["video_id"]: i["score"] for i in feed(proc, "alice", 30)["items"]})
                        and target not in f and f, "the disliked video to leave the feed")
    shared_items = [v for v in after if v in before and v.startswith("t2-")]
    assert shared_items and all(after[v] < before[v] for v in shared_items), "similar videos are pushed down"


async def test_similar_and_search_and_bad_requests(service):
    _, proc = service
    sim = httpx.get(f"{proc.url}/v1/videos/t4-v0/similar", params={"k": 5}).json()
    assert len(sim) == 5 and all(s["topic"] == "topic4" for s in sim) and "t4-v0" not in [s["video_id"] for s in sim]
    assert httpx.get(f"{proc.url}/v1/videos/nope/similar").status_code == 404
    for bad in (0, 1000, -1):
        resp = httpx.get(f"{proc.url}/v1/feed/alice", params={"k": bad})
        assert resp.status_code == 422, bad
    resp = httpx.get(f"{proc.url}/v1/search", params={"q": "topic 3 video"})
    assert resp.status_code == 200 and isinstance(resp.json(), list)


async def test_search_on_the_search_store_keeps_other_models_out(service):
    broker, proc = service
    settings = Settings()
    space = current_space()
    [words] = QueryEncoder(settings.models, settings.encoder).vectors(["a rocket launch into space"])
    rng = np.random.default_rng(7)

    def video(video_id: str, version: str, dim: int) -> VideoEmbedded:
        v = rng.normal(size=dim)
        return VideoEmbedded(video_id=video_id, vector=(v / np.linalg.norm(v)).round(5).tolist(), model_version=version,
                             search_vector=words.round(5).tolist(), concepts=[Concept(name="space shuttle", score=0.4)],
                             topic="topic3", creator_id="c", duration_s=5.0, created_at=T0 - timedelta(days=3))

    await publish(broker.bootstrap, topics.VIDEOS_EMBEDDED.name,
                  [video("rocket-old", "an-older-model+mean+text", 512), video("rocket-1", space.version, space.video_dim)],
                  "video_id")

    def search(q: str) -> list[dict]:
        resp = httpx.get(f"{proc.url}/v1/search", params={"q": q, "k": 5}, timeout=10)
        resp.raise_for_status()
        return resp.json()

    hits = await until(lambda: search("rocket launch"), "the rocket video to be searchable")
    assert hits[0]["video_id"] == "rocket-1" and hits[0]["concepts"] == ["space shuttle"], hits
    assert "rocket-old" not in {h["video_id"] for h in search("rocket")}
    text = httpx.get(f"{proc.url}/metrics").text
    assert 'clipstream_recommender_embeddings_skipped_total{reason="model_version"} 1.0' in text
    assert search("the video of a") == [], "a query of stop words only matches nothing"
    assert httpx.get(f"{proc.url}/v1/search", params={"q": "rocket " * 40}).status_code == 422
    assert httpx.get(f"{proc.url}/v1/videos/rocket-old/similar").status_code == 404


async def test_duplicates_unknown_videos_and_late_events(service):
    broker, proc = service
    e = WatchEvent(event_id="dup-1", user_id="bob", video_id="t1-v1", action="like", ts=T0)
    late = WatchEvent(user_id="bob", video_id="t1-v2", action="like", ts=T0 - timedelta(days=1))
    ghost = WatchEvent(user_id="bob", video_id="not-yet-uploaded", action="complete", ts=T0)
    await publish(broker.bootstrap, topics.WATCH_EVENTS.name, [e, e, late, ghost], "user_id")

    def counted() -> str:
        text = httpx.get(f"{proc.url}/metrics").text
        return text if 'clipstream_recommender_events_applied_total{result="duplicate"} 1.0' in text else ""

    metrics = await until(counted, "the duplicate to be counted")
    assert "clipstream_recommender_unknown_video_events_total 1.0" in metrics
    assert 'clipstream_recommender_consumer_lag_messages{group="clipstream-recommender",partition="0",topic="watch.events"}' in metrics
    assert 'topic="videos.embedded"' in metrics and 'topic="clipstream-recommender.changelog"' in metrics
    freshness, apply_lag = (histogram_buckets(metrics, f"clipstream_recommender_{name}_seconds")
                            for name in ("freshness", "apply_lag"))
    assert freshness[300.0] < freshness[float("inf")], "the late event's own time, a day old, counts in freshness"
    assert apply_lag[60.0] == apply_lag[float("inf")] >= 4, "from each record's send: all of them within a minute"
    bob = feed(proc, "bob")
    assert not bob["cold_start"]
    assert not {"t1-v1", "t1-v2"} & {i["video_id"] for i in bob["items"]}, "the late event was applied too"

