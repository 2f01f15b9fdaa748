"""Production mode: the encoder and the recommender against ONE Qdrant (a server in production).

Each service opens its stores with ``open_store`` and the settings a server deployment uses
(``QDRANT_URL`` set), so both go through :class:`QdrantServerStore`. qdrant-client's local mode runs
the same client code as a server (its upsert replaces a point's whole payload, as a server's does);
``qdrant_client.QdrantClient`` is pointed at one in-memory instance that both services share, as
they would share the server.

The encoder runs its real path (``Encoder.embed``: decode a generated clip, duplicate check, payload,
upsert into ``open_stores``' collections) with synthetic embeddings in place of the ONNX models, so
no prepared model is needed. The recommender then takes the encoder's own ``videos.embedded`` events
the way ``services/recommender/app.py`` does (``collections(space)``, ``open_store``, ``Catalogue``,
``handlers.add_video``). Afterwards every point the encoder wrote still holds its payload, field for
field and value for value: the recommender's catalogue view lives in collections of its own.
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime

import numpy as np
import pytest
import qdrant_client

from services.encoder.app import open_stores
from services.encoder.engine import Embedded, VectorSpace
from services.encoder.handlers import Encoder
from services.recommender.app import collections
from services.recommender.core.catalogue import Catalogue
from services.recommender.engine import Recommender
from services.recommender.handlers import add_video
from shared import topics
from shared.events import VideoEmbedded, VideoUploaded
from shared.inference import ModelError
from shared.settings import ModelSettings, Settings
from shared.vector_space import ModelSpace, model_space
from shared.vectors import ID_FIELD, open_store, point_id
from tests.media_files import good_clip

SERVER = "http://qdrant.clipstream.internal:6333"  # what a deployment sets; never contacted here
VIDEOS = 4


class SharedQdrant:
    """One qdrant-client local-mode instance standing in for the server. Every ``QdrantClient(url=...)``
    the services build gets it; a store's ``close`` ends that client's session, not the server."""

    def __init__(self) -> None:
        self.client = qdrant_client.QdrantClient(location=":memory:")
        self.connections: list[dict] = []

    def connect(self, *args, **kwargs) -> SharedQdrant:
        self.connections.append(kwargs)
        return self

    def close(self, **_) -> None:
        pass

    def __getattr__(self, name):
        return getattr(self.client, name)

    def payloads(self, collection: str) -> dict[str, dict]:
        points, _ = self.client.scroll(collection, limit=10_000, with_payload=True, with_vectors=False)
        return {str(p.id): dict(p.payload or {}) for p in points}


@pytest.fixture
def qdrant(monkeypatch):
    shared = SharedQdrant()
    monkeypatch.setattr(qdrant_client, "QdrantClient", shared.connect)  # QdrantServerStore imports it lazily
    yield shared
    shared.client.close()


@pytest.fixture
def models(tmp_path) -> ModelSettings:
    """The prepared models' settings when they are here (their manifests give the sizes), else manifests
    of the same form in tmp_path: no model file is read either way."""
    try:
        model_space(ModelSettings())
        return ModelSettings()
    except ModelError:
        root = tmp_path / "models"
        (root / "backbone").mkdir(parents=True)
        (root / "text").mkdir()
        (root / "backbone" / "manifest.json").write_text(json.dumps(
            {"file": "backbone.onnx", "version": "test-backbone", "dims": {"features": 48, "classes": 10}}))
        (root / "text" / "manifest.json").write_text(json.dumps({"file": "text.onnx", "version": "test-text", "dim": 24}))
        return ModelSettings(cache_dir=root)


class SyntheticEngine:
    """What ``Encoder`` uses of ``EncoderEngine``, with embeddings made up instead of computed by the models."""

    def __init__(self, root: Settings, space: ModelSpace) -> None:
        self.settings = root.encoder
        self.media = root.media
        self.version = space.version
        # as EncoderEngine names them (VectorSpace.of; tests/unit/shared/test_vector_space.py holds the engine to it)
        self.space = VectorSpace.of(space, root.encoder.collection)

    def embed_batch(self, items) -> list[Embedded]:
        out = []
        for _, text in items:
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            vector = rng.normal(size=self.space.video_dim)
            search = rng.normal(size=self.space.search_dim)
            out.append(Embedded(vector / np.linalg.norm(vector), vector / np.linalg.norm(vector),
                                search / np.linalg.norm(search), "science", 0.42,
                                [("rocket", 0.61), ("space shuttle", 0.23)]))
        return out


async def test_the_recommender_leaves_the_encoders_payloads_as_they_are(qdrant, models, tmp_path, monkeypatch):
    media = tmp_path / "media"
    media.mkdir()
    root = Settings(qdrant={"url": SERVER, "data_dir": tmp_path / "qdrant"}, models=models,
                    encoder={"artefacts_dir": tmp_path / "artefacts"}, fetch={"media_root": media})
    assert root.qdrant.url == SERVER
    space = model_space(root.models)  # what the recommender's create_app reads; the encoder's engine agrees

    # --- the encoder: its real upload path, into the collections open_stores opens
    written: dict[str, dict] = {}
    original = Encoder.payload

    def payload_spy(self, event, analysis, result, duplicate):
        written[event.video_id] = payload = original(self, event, analysis, result, duplicate)
        return payload

    monkeypatch.setattr(Encoder, "payload", payload_spy)
    engine = SyntheticEngine(root, space)
    store, search_store = open_stores(root, engine)
    encoder = Encoder(engine, store, None, root.fetch, search_store)
    events: list[VideoEmbedded] = []
    for i in range(VIDEOS):
        clip = good_clip(media, i, seconds=1.0)
        events.append(await encoder.embed(VideoUploaded(
            video_id=f"video-{i}", source=clip.name, title=f"launch {i}", tags=["space", f"t{i}"],
            creator_id=f"creator-{i % 2}", uploaded_at=datetime(2026, 3, 1, 12, i, tzinfo=UTC))))
    store.close()
    search_store.close()
    encoder_collections = (engine.space.collection, engine.space.search_collection)
    assert sorted(written) == [e.video_id for e in events]
    before = {name: qdrant.payloads(name) for name in encoder_collections}
    for name in encoder_collections:
        assert set(before[name]) == {point_id(e.video_id) for e in events}, name
        for video_id, fields in written.items():  # what is stored is exactly what the encoder wrote
            assert before[name][point_id(video_id)] == {**fields, ID_FIELD: video_id}, (name, video_id)

    # --- the recommender: as create_app opens its stores, as CatalogueReader adds each event
    videos, searchable = collections(space)
    rec_store = open_store(videos, space.video_dim, root.qdrant)
    rec_search = open_store(searchable, space.search_dim, root.qdrant)
    rec = Recommender(root.recommender, Catalogue(rec_store, rec_search, space.version), topics.WATCH_EVENTS.name)
    skipped: set[str] = set()
    for event in events:
        add_video(rec, event, skipped)
    assert not skipped and len(rec.catalogue) == VIDEOS, "the recommender took every video of the encoder"
    rec.close()
    rec_store.close()
    rec_search.close()

    # every service talked to the one server, none fell back to an embedded shard
    assert len(qdrant.connections) == 4 and {c["url"] for c in qdrant.connections} == {SERVER}
    assert not (tmp_path / "qdrant").exists()

    # the recommender's view is in collections of its own ...
    assert set(encoder_collections).isdisjoint((videos, searchable))
    names = {c.name for c in qdrant.get_collections().collections}
    assert names == {*encoder_collections, videos, searchable}
    for name in (videos, searchable):
        view = qdrant.payloads(name)
        assert set(view) == {point_id(e.video_id) for e in events}, name
        assert all(set(p) < set(before[encoder_collections[0]][k]) for k, p in view.items()), \
            "the catalogue's payload is a few of the encoder's fields"
    # ... and every point of the encoder's holds every field, with every value, the encoder wrote
    after = {name: qdrant.payloads(name) for name in encoder_collections}
    for name in encoder_collections:
        for pid, fields in before[name].items():
            missing = sorted(set(fields) - set(after[name].get(pid, {})))
            assert not missing, f"{name}: point {fields[ID_FIELD]} lost {missing}"
            assert after[name][pid] == fields, f"{name}: point {fields[ID_FIELD]} changed"
