"""Text search end to end, on content alone: clips made here from real photographs (scikit-image's
wheel, devkit/photo_clips.py: nothing downloaded) are uploaded through the gateway with EMPTY titles
and no tags; the encoder (pretrained backbone, concepts in the text model's space) embeds them, the
recommender indexes their search vectors from videos.embedded, and each clip is found by the
plain-words query a user would type (GET /v1/search?q=a cup of coffee).

Every service is a real process (``clipstream run``) on the embedded broker, as in production.

Ranks, not scores, are asserted: each clip must be among the top ``TOP`` results for its query. The
astronaut is the hard one: ImageNet has no astronaut (or space suit) class, the backbone sees barbell,
bobsled, torch in that photo, and the query "an astronaut" lands near the cat's concepts; measured
over seeds and sizes of the clip it ranks 2nd to 4th of the six. It is an expected failure (not
strict) until the encoder does better; the other five rank 1st in every measurement.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

pytest.importorskip("skimage")

from devkit.photo_clips import PHOTOS, make_photo_clips
from shared import topics
from shared.runtime.broker import EmbeddedBroker, free_ports
from shared.runtime.processes import ServiceProcess
from tests.integration.conftest import API_KEY

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
TOP = 3
K = 10
HARD = {"astronaut": "ImageNet has no astronaut class: ranks 2nd to 4th of 6 depending on the clip's seed and size"}


def video_id(name: str) -> str:
    return f"photo-{name}"


async def embedded_events(bootstrap: str, count: int, timeout_s: float = 180) -> list[dict]:
    """The first ``count`` events on videos.embedded (a dead letter instead fails at once)."""
    consumer = AIOKafkaConsumer(topics.VIDEOS_EMBEDDED.name, topics.VIDEOS_UPLOADED.dlq, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got: list[dict] = []
    try:
        async def drain() -> None:
            while len(got) < count:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    for r in records:
                        assert tp.topic == topics.VIDEOS_EMBEDDED.name, f"dead-lettered: {r.value[:300]!r}"
                        got.append(json.loads(r.value))

        await asyncio.wait_for(drain(), timeout_s)
    finally:
        await consumer.stop()
    return got


def catalogue_size(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("clipstream_recommender_catalogue_videos_count"))


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """Broker, encoder, recommender and gateway; the six photo clips uploaded with empty titles, embedded
    and in the recommender's catalogue."""
    root = tmp_path_factory.mktemp("search")
    media = root / "media"
    clips = make_photo_clips(media, seconds=2.0, seed=0)
    with EmbeddedBroker(log_path=root / "broker.log") as broker:
        kafka = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "1000",
                 "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "200"}
        ports = dict(zip(("encoder", "recommender", "gateway"), free_ports(3)))
        envs = {
            "encoder": {**kafka, "CLIPSTREAM_FETCH_MEDIA_ROOT": str(media), "CLIPSTREAM_QDRANT_DATA_DIR": str(root / "qdrant"),
                        "CLIPSTREAM_ENCODER_ARTEFACTS_DIR": str(root / "artefacts")},
            "recommender": {**kafka, "CLIPSTREAM_RECOMMENDER_STATE_DIR": str(root / "state"),
                            "CLIPSTREAM_QDRANT_DATA_DIR": str(root / "qdrant")},
            "gateway": {**kafka, "CLIPSTREAM_GATEWAY_MEDIA_ROOT": str(media), "CLIPSTREAM_GATEWAY_API_KEYS": API_KEY,
                        "CLIPSTREAM_GATEWAY_RECOMMENDER_URL": f"http://127.0.0.1:{ports['recommender']}"},
        }
        procs = {name: ServiceProcess(name, ports[name], env=envs[name], log_path=root / f"{name}.log")
                 for name in envs}
        started: list[ServiceProcess] = []
        try:
            for proc in procs.values():
                proc.start(timeout_s=180)  # the encoder and recommender load their models
                started.append(proc)
            api = httpx.Client(base_url=procs["gateway"].url, headers={"X-API-Key": API_KEY}, timeout=30)
            for name, path in clips.items():
                resp = api.post("/v1/videos", json={"video_id": video_id(name), "source": path.name, "title": "",
                                                    "tags": [], "creator_id": "creator-photos"})
                assert resp.status_code == 202, resp.text
            events = asyncio.run(embedded_events(broker.bootstrap, len(clips)))
            indexed = asyncio.run(_until(lambda: catalogue_size(procs["recommender"].url) >= len(clips), 60))
            assert indexed, f"the recommender's catalogue never held the {len(clips)} clips; see {root}"
            yield {"api": api, "events": {e["video_id"]: e for e in events}, "recommender": procs["recommender"],
                   "root": root}
            api.close()
        finally:
            for proc in reversed(started):
                proc.stop()


async def _until(condition, timeout_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.2)
    return False


def test_each_clip_is_embedded_with_concepts_and_a_search_vector(platform):
    events = platform["events"]
    assert set(events) == {video_id(n) for n in PHOTOS}
    for vid, event in events.items():
        assert event["title"] == "" and event["tags"] == []
        assert event["concepts"], f"{vid}: no concept"
        assert event["search_vector"], f"{vid}: not searchable"
        assert event["topic"], f"{vid}: no topic (the upload named none; the encoder chooses one)"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=HARD[n], strict=False))
                                  if n in HARD else n for n in PHOTOS])
def test_each_clip_is_found_by_its_plain_words_query(platform, name):
    query = PHOTOS[name].query
    resp = platform["api"].get("/v1/search", params={"q": query, "k": K})
    assert resp.status_code == 200, resp.text
    hits = resp.json()
    ids = [h["video_id"] for h in hits]
    assert len(ids) == len(set(ids)) and all(-1.0001 <= h["score"] <= 1.0001 for h in hits), hits
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True), "best first"
    assert video_id(name) in ids[:TOP], f"{query!r}: {video_id(name)} not in the top {TOP}: {hits}"


def test_a_query_of_stop_words_only_finds_nothing(platform):
    resp = platform["api"].get("/v1/search", params={"q": "the of and", "k": K})
    assert (resp.status_code == 200 and resp.json() == []) or 400 <= resp.status_code < 500, (resp.status_code, resp.text)


@pytest.mark.parametrize("q", ["x" * 300, "coffee " * 43])
def test_an_over_long_query_is_refused_never_a_server_error(platform, q):
    own = httpx.get(f"{platform['recommender'].url}/v1/search", params={"q": q}, timeout=30)
    assert 400 <= own.status_code < 500, (own.status_code, own.text[:300])
    through = platform["api"].get("/v1/search", params={"q": q})
    assert 400 <= through.status_code < 500, (through.status_code, through.text[:300])


@pytest.mark.parametrize("q", ["", " ", "!!!", "咖啡", "a" * 200])
def test_odd_queries_are_never_a_server_error(platform, q):
    resp = platform["api"].get("/v1/search", params={"q": q, "k": K})
    assert resp.status_code < 500, (resp.status_code, resp.text[:300])
    if resp.status_code == 200:
        assert isinstance(resp.json(), list)
