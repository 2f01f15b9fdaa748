"""Creator insights end to end on the embedded broker: a recommender and a gateway as real processes.

Users who like topic 2 make a new topic-2 video's reach larger than a new topic-4 video's; both forecasts
equal the count a brute-force pass computes on the same state (the same events folded by the same engine
in this process, every user against every catalogue video in numpy). Also: no users yet (0 with a reason),
an audience under the privacy floor (withheld), a creator's key on another creator's video (403), an
unknown video (404), a wrong key (401).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest

from services.recommender.core.catalogue import Catalogue, VideoInfo
from services.recommender.core.reach import brute_force
from services.recommender.engine import Recommender
from shared import topics
from shared.events import VideoEmbedded, WatchEvent
from shared.insights import rounded
from shared.ownership import partition_for
from shared.runtime.broker import free_port
from shared.runtime.processes import ServiceProcess
from shared.settings import RecommenderSettings
from shared.vectors import EdgeVectorStore
from tests.integration.conftest import API_KEY, publish, wait_for
from tests.recsys_data import videos

pytestmark = pytest.mark.integration
TOP_K = 10
FLOOR = 10
CREATOR_KEY = "creator-2-key"


def new_video(video_id: str, like: VideoEmbedded, creator: str, rng) -> VideoEmbedded:
    v = np.asarray(like.vector) + 0.2 * rng.normal(size=len(like.vector)) / np.sqrt(len(like.vector))
    return like.model_copy(update={"video_id": video_id, "vector": (v / np.linalg.norm(v)).round(5).tolist(),
                                   "creator_id": creator, "title": f"new {video_id}"})


def likes(users: list[str], topic: int, rng, now: datetime) -> list[WatchEvent]:
    return [WatchEvent(user_id=u, video_id=f"t{topic}-v{j}", action="like", ts=now - timedelta(minutes=int(m)))
            for u in users for m, j in enumerate(rng.choice(10, 4, replace=False))]


def brute_counts(catalogue_videos: list[VideoEmbedded], events: list[WatchEvent], targets: list[str],
                 tmp_path) -> dict[str, tuple[int, int]]:
    """The reach of each target over the users ``events`` make, by brute force: (users, their events)."""
    store = EdgeVectorStore(tmp_path / "reference", len(catalogue_videos[0].vector))
    try:
        cat = Catalogue(store)
        for v in catalogue_videos:
            cat.add(VideoInfo(v.video_id, v.topic, v.creator_id, v.created_at.timestamp(), None, v.title), v.vector)
        rec = Recommender(RecommenderSettings(state_dir=tmp_path / "reference-state"), cat, topics.WATCH_EVENTS.name)
        for e in events:
            rec.apply(e, partition_for(e.user_id, topics.WATCH_EVENTS.partitions))
        states = [u for st in rec.partitions.values() for u in st.users.values() if u.long is not None]
        users = np.stack([u.long for u in states])
        counts = np.array([u.events for u in states])
        ids = list(cat.vectors)
        vids = np.stack([cat.vectors[i] for i in ids])
        sims = (users / np.linalg.norm(users, axis=1, keepdims=True)) @ vids.T
        bars = -np.sort(-sims, axis=1)[:, TOP_K - 1]
        reached = {t: brute_force(cat.vectors[t], users, bars) for t in targets}
        return {t: (int(hit.sum()), int(counts[hit].sum())) for t, hit in reached.items()}
    finally:
        store.close()


async def test_reach_forecast_follows_the_audience_and_matches_brute_force(broker, tmp_path):
    rng = np.random.default_rng(7)
    now = datetime.now(UTC)
    catalogue = videos()
    by_id = {v.video_id: v for v in catalogue}
    fresh = [new_video("new-t2", by_id["t2-v0"], "creator2-0", rng), new_video("new-t4", by_id["t4-v0"], "creator4-1", rng)]
    catalogue += fresh
    await publish(broker.bootstrap, topics.VIDEOS_EMBEDDED.name, catalogue, "video_id")
    rec_port = free_port()
    rec_env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_RECOMMENDER_STATE_DIR": str(tmp_path / "state"),
               "CLIPSTREAM_QDRANT_DATA_DIR": str(tmp_path / "qdrant"), "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "1000",
               "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "200", "CLIPSTREAM_RECOMMENDER_INSIGHTS_TOP_K": str(TOP_K),
               "CLIPSTREAM_RECOMMENDER_INSIGHTS_REFRESH_S": "0.2"}
    gw_env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_GATEWAY_API_KEYS": API_KEY,
              "CLIPSTREAM_GATEWAY_RECOMMENDER_URL": f"http://127.0.0.1:{rec_port}",
              "CLIPSTREAM_GATEWAY_INSIGHTS_MIN_USERS": str(FLOOR),
              "CLIPSTREAM_GATEWAY_CREATOR_KEYS": json.dumps({CREATOR_KEY: ["creator2-0"]})}
    with ServiceProcess("recommender", rec_port, env=rec_env, log_path=tmp_path / "recommender.log"), \
            ServiceProcess("gateway", free_port(), env=gw_env, log_path=tmp_path / "gateway.log") as gw:

        def ask(video: str, key: str = API_KEY) -> httpx.Response:
            return httpx.post(f"{gw.url}/v1/insights", json={"video_id": video}, headers={"X-API-Key": key}, timeout=10)

        await wait_for(lambda: ask("new-t2").status_code == 200, 30, "the catalogue to hold the new video")
        empty = ask("new-t2").json()
        assert empty["reach"]["users"] == 0 and "no users active" in empty["reach"]["reason"]
        assert empty["creator_id"] == "creator2-0" and empty["best_time"]["hours_utc"] == []

        few = [f"early{i}" for i in range(4)]
        events = likes(few, 2, rng, now)
        await publish(broker.bootstrap, topics.WATCH_EVENTS.name, events, "user_id")
        await wait_for(lambda: "withheld" in ask("new-t2").json()["reach"]["reason"], 30,
                       "an audience under the privacy floor to be withheld")
        assert ask("new-t2").json()["reach"]["users"] is None

        fans = [f"fan2-{i}" for i in range(30)] + [f"fan4-{i}" for i in range(12)]
        more = likes(fans[:30], 2, rng, now) + likes(fans[30:], 4, rng, now)
        events += more
        await publish(broker.bootstrap, topics.WATCH_EVENTS.name, more, "user_id")
        audience = len(few) + len(fans)
        await wait_for(lambda: ask("new-t2").json()["reach"]["active_users"] == audience, 60,
                       "every user's reach point to be refreshed")
        expected_both = brute_counts(catalogue, events, ["new-t2", "new-t4"], tmp_path)
        expected = {v: users for v, (users, _) in expected_both.items()}

        def settled() -> bool:  # every user's point refreshed after their last event (a point lags it by a refresh)
            reach = ask("new-t2").json()["reach"]
            return (reach["users"], reach["events"]) == expected_both["new-t2"]

        await wait_for(settled, 30, "the reach to count every reached user's last event")
        got = {v: ask(v).json() for v in ("new-t2", "new-t4")}
        for video, answer in got.items():
            n = answer["reach"]["users"]
            if expected[video] >= FLOOR:  # the stated tolerance: exact (an embedded shard this size is scanned)
                assert n == expected[video], (video, answer["reach"], expected)
                assert answer["reach"]["events"] == expected_both[video][1], "the reached users' events, all told"
            else:
                assert n is None and "withheld" in answer["reach"]["reason"]
        assert expected["new-t2"] > expected["new-t4"] and expected["new-t2"] >= FLOOR
        t2 = got["new-t2"]
        assert t2["reach"]["by_topic"].get("topic2", 0) >= FLOOR and t2["partitions_missing"] == []
        assert t2["best_time"]["hours_utc"] and t2["tags"] and t2["tags"][0]["evidence"]

        own = ask("new-t2", CREATOR_KEY)  # the creator's own video: the same counts, rounded for a creator
        assert own.status_code == 200 and own.json()["reach"]["rounded_to"] == 10
        assert own.json()["reach"]["users"] == rounded(expected["new-t2"], 10)
        assert own.json()["reach"]["events"] == rounded(expected_both["new-t2"][1], 10)
        assert own.json()["reach"]["active_users"] == rounded(audience, 10)
        forbidden = ask("new-t4", CREATOR_KEY)
        assert forbidden.status_code == 403 and "creator" in forbidden.json()["detail"]
        assert httpx.get(f"{gw.url}/v1/feed/u1", headers={"X-API-Key": CREATOR_KEY}, timeout=10).status_code == 403
        assert ask("no-such-video").status_code == 404
        assert ask("new-t2", "wrong-key").status_code == 401
        bad = httpx.post(f"{gw.url}/v1/insights", json={"video_id": "../etc"}, headers={"X-API-Key": API_KEY},
                         timeout=10)
        assert bad.status_code == 422

        trending = [WatchEvent(user_id=f"trend{i}", video_id=f"t3-v{i % 10}", action="complete", watch_ms=9000,
                               duration_ms=10000, ts=now - timedelta(minutes=15)) for i in range(25)]
        await publish(broker.bootstrap, topics.WATCH_EVENTS.name, trending, "user_id")

        def topic3_rising() -> dict | None:
            got = httpx.get(f"{gw.url}/v1/trends", params={"window": "1h"}, headers={"X-API-Key": CREATOR_KEY},
                            timeout=10).json()
            return next((t for t in got["rising"] if (t["kind"], t["name"]) == ("topic", "topic3")), None)

        await wait_for(topic3_rising, 30, "topic3 to rise in the last hour's trends")
        rise = topic3_rising()
        assert rise["views"] == 25 and rise["before"] == 0 and rise["z"] >= 3
        assert httpx.get(f"{gw.url}/v1/trends", params={"window": "7d"}, headers={"X-API-Key": API_KEY},
                         timeout=10).status_code == 422

        cli = [sys.executable, "-m", "cli.main", "insights", "--gateway", gw.url, "--json"]
        done = subprocess.run([*cli, "new-t2", "--key", API_KEY], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["reach"]["users"] == expected["new-t2"]
        refused = subprocess.run([*cli, "new-t4", "--key", CREATOR_KEY], capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "HTTP 403" in refused.stderr


async def test_an_unpublished_upload_is_analysed_and_polled(broker, tmp_path):
    """POST /v1/insights/uploads: the encoder embeds the file (cover candidates kept, nothing published to the
    catalogue), the recommenders read the result, the poll answers; a corrupt file fails with its reason."""
    from tests import media_files

    media = tmp_path / "media"
    media.mkdir()
    good = media_files.good_clip(media)
    bad = media_files.text_file(media)
    await publish(broker.bootstrap, topics.VIDEOS_EMBEDDED.name, videos(), "video_id")
    rec_port = free_port()
    common = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "1000",
              "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "200", "CLIPSTREAM_QDRANT_DATA_DIR": str(tmp_path / "qdrant"),
              "CLIPSTREAM_FETCH_MEDIA_ROOT": str(media)}
    enc_env = {**common, "CLIPSTREAM_ENCODER_ARTEFACTS_DIR": str(tmp_path / "artefacts")}
    rec_env = {**common, "CLIPSTREAM_RECOMMENDER_STATE_DIR": str(tmp_path / "state")}
    gw_env = {**common, "CLIPSTREAM_GATEWAY_API_KEYS": API_KEY, "CLIPSTREAM_GATEWAY_MEDIA_ROOT": str(media),
              "CLIPSTREAM_GATEWAY_RECOMMENDER_URL": f"http://127.0.0.1:{rec_port}",
              "CLIPSTREAM_GATEWAY_CREATOR_KEYS": json.dumps({CREATOR_KEY: ["creator-7"]})}
    with ServiceProcess("encoder", free_port(), env=enc_env, log_path=tmp_path / "encoder.log"), \
            ServiceProcess("recommender", rec_port, env=rec_env, log_path=tmp_path / "recommender.log"), \
            ServiceProcess("gateway", free_port(), env=gw_env, log_path=tmp_path / "gateway.log") as gw:
        headers = {"X-API-Key": CREATOR_KEY}

        def upload(request_id: str, source: str, creator: str = "creator-7") -> httpx.Response:
            return httpx.post(f"{gw.url}/v1/insights/uploads", headers=headers, timeout=10, json={
                "request_id": request_id, "source": source, "title": "draft", "tags": ["t2"], "creator_id": creator})

        def poll(request_id: str) -> dict:
            return httpx.get(f"{gw.url}/v1/insights/uploads/{request_id}", headers=headers, timeout=10).json()

        assert upload("ins-good", good.name).status_code == 202
        assert upload("ins-bad", bad.name).status_code == 202
        assert upload("ins-unsafe", "../../etc/passwd").status_code == 422
        assert upload("ins-other", good.name, creator="creator-8").status_code == 403
        assert poll("ins-never-sent")["status"] == "pending"
        await wait_for(lambda: poll("ins-good")["status"] != "pending", 120, "the upload to be analysed")
        done = poll("ins-good")
        assert done["status"] == "ok", done
        insights = done["insights"]
        assert insights["creator_id"] == "creator-7" and insights["reach"]["users"] == 0  # nobody active yet
        assert insights["covers"] and all((tmp_path / "artefacts" / c).is_file() for c in insights["covers"])
        assert insights["tags"] == [] or insights["tags"][0]["evidence"]
        await wait_for(lambda: poll("ins-bad")["status"] != "pending", 60, "the corrupt upload to fail")
        failed = poll("ins-bad")
        assert failed["status"] == "failed" and failed["error"] and failed["insights"] is None
        # never added to the catalogue: the video id space does not know it
        assert httpx.post(f"{gw.url}/v1/insights", json={"video_id": "ins-good"}, headers={"X-API-Key": API_KEY},
                          timeout=10).status_code == 404
