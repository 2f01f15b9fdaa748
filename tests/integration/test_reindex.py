"""``clipstream reindex`` on the real embedded broker: every upload of videos.uploaded is re-embedded with
the current model into its own collection and announced on videos.embedded with that model version; a
bad upload is counted, not fatal; a second run finds everything done and skips it."""

from __future__ import annotations

import asyncio
import json

import pytest

from cli.reindex import run_reindex
from devkit.photo_clips import make_photo_clip
from services.encoder.app import open_stores
from services.encoder.engine import EncoderEngine
from shared import topics
from shared.events import VideoEmbedded, VideoUploaded
from shared.replay import read_to_end
from shared.settings import EncoderSettings, Settings
from tests.integration.conftest import publish

pytestmark = pytest.mark.integration

PHOTOS = ("astronaut", "chelsea", "coffee")


@pytest.fixture
def settings(broker, tmp_path, monkeypatch) -> Settings:
    media = tmp_path / "media"
    for name in ("QDRANT_URL", "CLIPSTREAM_QDRANT_URL", "CLIPSTREAM_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "CLIPSTREAM_FETCH_MEDIA_ROOT": str(media),
           "CLIPSTREAM_QDRANT_DATA_DIR": str(tmp_path / "qdrant"),
           "CLIPSTREAM_ENCODER_ARTEFACTS_DIR": str(tmp_path / "artefacts")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> EncoderEngine:
    """One engine for the runs of a test (building one takes seconds); the limit test builds its own."""
    root = Settings()
    encoder = EncoderSettings(artefacts_dir=tmp_path_factory.mktemp("reindex-artefacts"))
    return EncoderEngine(root.models, encoder, root.media)


async def embedded_events(bootstrap: str) -> list[VideoEmbedded]:
    return [VideoEmbedded.model_validate(json.loads(value))
            async for value in read_to_end(bootstrap, topics.VIDEOS_EMBEDDED.name)]


async def test_reindex_fills_the_models_collection_counts_bad_uploads_and_resumes(broker, settings, engine, capsys,
                                                                                 monkeypatch):
    monkeypatch.setattr("services.encoder.engine.EncoderEngine", lambda models, encoder, media: engine)
    media = settings.fetch.media_root
    uploads = [VideoUploaded(video_id=f"vid-{name}", source=make_photo_clip(name, media / f"{name}.mp4",
                                                                            seconds=1.0, size=(160, 120)).name,
                             creator_id="creator-1", title=f"A clip of {name}", tags=["demo"])
               for name in PHOTOS]
    uploads.insert(1, VideoUploaded(video_id="vid-missing", source="missing.mp4", creator_id="creator-1"))
    await publish(broker.bootstrap, topics.VIDEOS_UPLOADED.name, uploads, "video_id")

    assert await asyncio.to_thread(run_reindex, None, None) == 1, "a failed upload makes the exit status 1"
    out = capsys.readouterr().out
    assert "re-embedded 3, skipped 0 (already there), failed 1" in out, out
    assert "vid-missing" in out, "the failed upload is named"

    assert engine.space.collection in out
    events = await embedded_events(broker.bootstrap)
    assert sorted(e.video_id for e in events) == sorted(f"vid-{name}" for name in PHOTOS)
    for e in events:
        assert e.model_version == engine.version
        assert len(e.vector) == engine.space.video_dim
        assert not e.search_vector or len(e.search_vector) == engine.space.search_dim

    # the second run finds every video in the new collection with this model version: nothing is redone
    assert await asyncio.to_thread(run_reindex, broker.bootstrap, None) == 1
    out = capsys.readouterr().out
    assert "re-embedded 0, skipped 3 (already there), failed 1" in out, out
    assert len(await embedded_events(broker.bootstrap)) == 3, "no event for a skipped video"

    store, search_store = open_stores(settings, engine)  # the runs have closed their embedded shards
    try:
        assert store.count() == 3
        points = store.get([f"vid-{name}" for name in PHOTOS])
        assert {p.payload["model_version"] for p in points} == {engine.version}
        assert search_store.count() <= 3
    finally:
        store.close()
        search_store.close()
    assert (settings.qdrant.data_dir / "encoder" / engine.space.collection).is_dir(), \
        "the service's embedded data dir rule: <data_dir>/encoder/<collection>"


async def test_limit_stops_after_that_many_uploads(broker, settings, capsys):
    media = settings.fetch.media_root
    uploads = [VideoUploaded(video_id=f"vid-{name}", source=make_photo_clip(name, media / f"{name}.mp4",
                                                                            seconds=1.0, size=(160, 120)).name,
                             creator_id="creator-1") for name in PHOTOS[:2]]
    await publish(broker.bootstrap, topics.VIDEOS_UPLOADED.name, uploads, "video_id")
    assert await asyncio.to_thread(run_reindex, None, 1) == 0
    assert "re-embedded 1, skipped 0 (already there), failed 0" in capsys.readouterr().out
    assert len(await embedded_events(broker.bootstrap)) == 1
