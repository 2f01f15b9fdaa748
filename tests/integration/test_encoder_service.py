"""The encoder as a real process on the real embedded broker: uploads become Qdrant points and
videos.embedded events; repeats stay one point; every kind of bad file is dead-lettered with its
reason while the service keeps consuming."""

from __future__ import annotations

import asyncio
import json
import shutil

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from shared.vector_space import model_id
from shared import topics
from shared.events import VideoEmbedded, VideoUploaded
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from shared.vectors import EdgeVectorStore
from tests import media_files
from tests.integration.conftest import publish

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoder")
    media = root / "media"
    media.mkdir()
    with EmbeddedBroker(log_path=root / "broker.log") as broker:
        settings = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_FETCH_MEDIA_ROOT": str(media),
            "CLIPSTREAM_QDRANT_DATA_DIR": str(root / "qdrant"), "CLIPSTREAM_ENCODER_ARTEFACTS_DIR": str(root / "artefacts"),
            # a member that stops leaves the group; 6 s only for one that cannot heartbeat (a 1 s session let a
            # CPU-starved restart rebalance over and over past its readiness wait, twice in CI under load)
            "CLIPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "6000", "CLIPSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        }
        encoder = ServiceProcess("encoder", free_port(), env=settings, log_path=root / "encoder.log")
        encoder.start()
        try:
            yield {"root": root, "media": media, "broker": broker, "encoder": encoder}
        finally:
            encoder.stop()


async def collect(bootstrap: str, topic: str, count: int, timeout_s: float = 120) -> list[dict]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    got: list[dict] = []
    try:
        async def drain() -> None:
            while len(got) < count:
                batch = await consumer.getmany(timeout_ms=500)
                got.extend(json.loads(r.value) for records in batch.values() for r in records)

        await asyncio.wait_for(drain(), timeout_s)
    finally:
        await consumer.stop()
    return got


def upload(video_id: str, source: str, **kw) -> VideoUploaded:
    return VideoUploaded(video_id=video_id, source=source, creator_id="creator-1", title=kw.pop("title", "A clip"),
                         tags=kw.pop("tags", ["demo"]), **kw)


async def test_uploads_become_points_and_events_and_repeats_stay_one_point(env):
    media, broker = env["media"], env["broker"]
    files = [media_files.good_clip(media, i, seconds=2.0, seed=11) for i in range(3)]
    shutil.copy(files[0], media / "copy_of_0.mp4")
    uploads = [upload(f"vid-{i}", f.name, topic="sports" if i == 0 else None) for i, f in enumerate(files)]
    uploads.append(upload("vid-copy", "copy_of_0.mp4"))
    await publish(broker.bootstrap, topics.VIDEOS_UPLOADED.name, uploads, "video_id")
    events = [VideoEmbedded.model_validate(e) for e in await collect(broker.bootstrap, topics.VIDEOS_EMBEDDED.name, 4)]
    by_id = {e.video_id: e for e in events}
    assert set(by_id) == {"vid-0", "vid-1", "vid-2", "vid-copy"}
    # two identical files: whichever was stored second points at the first
    pair = {by_id["vid-copy"].duplicate_of, by_id["vid-0"].duplicate_of}
    assert pair in ({"vid-0", None}, {"vid-copy", None}), pair
    assert by_id["vid-1"].duplicate_of is None
    assert by_id["vid-0"].topic == "sports", "the uploader's topic wins over the predicted one"
    version, dim = events[0].model_version, len(events[0].vector)  # one model: one version, one size
    for e in events:
        assert e.model_version == version
        assert len(e.vector) == dim and e.keyframes > 0 and e.duration_s == pytest.approx(2.0, abs=0.1)
        assert abs(sum(x * x for x in e.vector) - 1) < 1e-3
        assert e.thumbnail and (env["root"] / "artefacts" / "thumbnails" / "vid-1.jpg").exists()

    await publish(broker.bootstrap, topics.VIDEOS_UPLOADED.name, [uploads[1]], "video_id")  # the same upload again
    await collect(broker.bootstrap, topics.VIDEOS_EMBEDDED.name, 5)

    metrics = httpx.get(f"{env['encoder'].url}/metrics").text
    assert 'clipstream_encoder_videos_total{outcome="embedded"}' in metrics
    assert 'clipstream_encoder_stage_duration_seconds_count{stage="decode"}' in metrics


BAD_SOURCES = {
    "path traversal": ("../../etc/passwd", "unsafe_source"),
    "loopback URL": ("http://127.0.0.1:9/video.mp4", "unsafe_source"),
    "link-local URL": ("http://169.254.169.254/latest/meta-data", "unsafe_source"),
    "private URL": ("http://10.20.30.40/v.mp4", "unsafe_source"),
}


async def test_every_bad_input_is_dead_lettered_with_its_reason_and_consuming_goes_on(env):
    media, broker = env["media"], env["broker"]
    cases: list[tuple[str, str, str]] = []  # (label, source, expected reason)
    for label, make in media_files.BAD_FILES.items():
        cases.append((label, make(media).name, label.split("(")[0]))
    for label, (source, reason) in BAD_SOURCES.items():
        cases.append((label, source, reason))
    good = media_files.good_clip(media, 4, seconds=1.5, seed=12)
    uploads = [upload(f"bad-{i}", source) for i, (_, source, _) in enumerate(cases)]
    await publish(broker.bootstrap, topics.VIDEOS_UPLOADED.name,
                  [*uploads, b"{not json", upload("good-after-bad", good.name)], "video_id")

    letters = await collect(broker.bootstrap, topics.VIDEOS_UPLOADED.dlq, len(cases) + 1)
    by_key = {letter["key"]: letter for letter in letters}
    for i, (label, _, reason) in enumerate(cases):
        letter = by_key[f"bad-{i}"]
        assert letter["reason"] == "rejected", label
        assert letter["detail"].startswith(reason), (label, letter["detail"])
        assert letter["source_topic"] == "videos.uploaded" and letter["service"] == "encoder"
    assert any(letter["reason"] == "malformed_json" for letter in letters)
    no_duration = by_key[f"bad-{[label for label, _, _ in cases].index('too_long(no duration in the header)')}"]
    assert "over the limit of 600 s (the container states no duration)" in no_duration["detail"], no_duration

    found = False
    for _ in range(60):
        if any(e["video_id"] == "good-after-bad" for e in await _all_events(broker.bootstrap, topics.VIDEOS_EMBEDDED.name)):
            found = True
            break
        await asyncio.sleep(1)
    assert found, "the service kept consuming after the bad uploads"

    metrics = httpx.get(f"{env['encoder'].url}/metrics").text
    for reason in {r for _, _, r in cases}:
        assert f'clipstream_encoder_failures_total{{reason="{reason}"}}' in metrics, reason
    assert 'clipstream_encoder_dlq_messages_total{reason="rejected",topic="videos.uploaded"}' in metrics


async def _all_events(bootstrap: str, topic: str) -> list[dict]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=1000)
        return [json.loads(r.value) for records in batch.values() for r in records]
    finally:
        await consumer.stop()


async def test_the_shard_holds_one_point_per_upload_after_a_repeat(env):
    """Last in this module: it stops the encoder for good (the embedded shard belongs to one process). Restarting
    the encoder after this process had opened and closed its shard hung in CI (twice on 2026-11-30, never when run
    alone); not restarting here keeps that out of the other tests while it is looked into."""
    events = [VideoEmbedded.model_validate(e) for e in await _all_events(env["broker"].bootstrap,
                                                                         topics.VIDEOS_EMBEDDED.name)]
    version, dim = events[0].model_version, len(events[0].vector)
    embedded = {e.video_id for e in events}  # the first test's four (one of them twice) and the good-after-bad one
    env["encoder"].stop()
    # the model version's own collection, under the service's folder of the data dir
    store = EdgeVectorStore(env["root"] / "qdrant" / "encoder" / f"videos-{model_id(version)}", dim)
    try:
        assert len(events) == len(embedded) + 1 and store.count() == len(embedded), \
            "re-publishing an upload leaves one point"
        [point] = store.get(["vid-0"])
        assert point.payload["topic"] == "sports" and point.payload["creator_id"] == "creator-1"
        assert point.payload["model_version"] == version
        flagged = [p.payload["duplicate_of"] for p in store.get(["vid-0", "vid-copy"])]
        assert sorted(map(str, flagged)) in (["None", "vid-0"], ["None", "vid-copy"])
    finally:
        store.close()
