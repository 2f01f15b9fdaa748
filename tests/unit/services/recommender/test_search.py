"""Text search through the catalogue's search store, embeddings of another model kept out of the
catalogue, and user vectors of another model dropped at load (issue 16)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.recommender import metrics
from services.recommender.api import create_router
from services.recommender.core.catalogue import Catalogue, VideoInfo
from services.recommender.engine import Recommender
from services.recommender.handlers import add_video
from services.recommender.state_store import PartitionStore
from shared.events import Concept, VideoEmbedded, WatchEvent
from shared.search import QueryEncoder
from shared.settings import RecommenderSettings, Settings
from shared.vectors import EdgeVectorStore

DIM, SEARCH_DIM = 8, 4
VERSION = "backbone-a+mean+text-a"
T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


def unit(*values: float) -> list[float]:
    v = np.asarray(values, np.float32)
    return (v / np.linalg.norm(v)).tolist()


def basis(i: int, dim: int = DIM) -> list[float]:
    v = [0.0] * dim
    v[i] = 1.0
    return v


def embedded(video: str, vector: list[float], search: list[float], version: str = VERSION, **kw) -> VideoEmbedded:
    return VideoEmbedded(video_id=video, vector=vector, search_vector=search, model_version=version, creator_id="c",
                         duration_s=3.0, topic="nature", created_at=T0, **kw)


class Stores:
    def __init__(self, tmp_path, dim: int = DIM, search_dim: int = SEARCH_DIM, version: str | None = VERSION) -> None:
        self.store = EdgeVectorStore(tmp_path / f"videos-{dim}", dim)
        self.search = EdgeVectorStore(tmp_path / f"search-{search_dim}", search_dim)
        self.catalogue = Catalogue(self.store, self.search, version)

    def close(self) -> None:
        self.store.close()
        self.search.close()


@pytest.fixture
def stores(tmp_path):
    s = Stores(tmp_path)
    yield s
    s.close()


def fake_queries(table: dict[str, list[float] | None]):
    """A stand-in for QueryEncoder.vectors: fixed vectors per query."""
    return lambda queries: [None if table[q] is None else np.asarray(table[q], np.float32) for q in queries]


def rec_for(stores: Stores, tmp_path, queries=None) -> Recommender:
    return Recommender(RecommenderSettings(state_dir=tmp_path / "state"), stores.catalogue, "watch.events", queries)


def skipped(reason: str) -> float:
    return metrics.embeddings_skipped.labels(reason)._value.get()


# --------------------------------------------------------------------------- search on the store


def test_search_finds_the_nearest_search_vector_and_not_the_unsearchable(stores, tmp_path):
    rec = rec_for(stores, tmp_path, fake_queries({"cats": unit(1, 0.1, 0, 0), "the of": None}))
    logged: set[str] = set()

    async def feed() -> None:
        add_video(rec, embedded("cat", basis(0), unit(1, 0, 0, 0), concepts=[Concept(name="tabby", score=0.6)]),
                  logged)
        add_video(rec, embedded("dog", basis(1), unit(0.6, 0.8, 0, 0)), logged)
        add_video(rec, embedded("silent", basis(2), []), logged)  # nothing a query could match
        add_video(rec, embedded("blank", basis(3), [0.0] * SEARCH_DIM), logged)

    asyncio.run(feed())
    assert len(rec.catalogue) == 4 and stores.search.count() == 2
    hits = rec.search("cats", 10)
    assert [v for v, _ in hits] == ["cat", "dog"] and hits[0][1] == pytest.approx(unit(1, 0.1, 0, 0)[0], abs=1e-4)
    assert rec.catalogue.info["cat"].concepts == ("tabby",)
    assert rec.search("the of", 10) == [], "a query with no content word matches nothing"


def test_a_video_made_unsearchable_leaves_the_search_store(stores, tmp_path):
    rec = rec_for(stores, tmp_path, fake_queries({"cats": unit(1, 0, 0, 0)}))
    rec.catalogue.add(VideoInfo("cat", "nature", "c", 0.0, None, "a cat"), basis(0), unit(1, 0, 0, 0))
    rec.catalogue.add(VideoInfo("dog", "nature", "c", 0.0, None, "a dog"), basis(1), unit(0, 1, 0, 0))
    assert [v for v, _ in rec.search("cats", 1)] == ["cat"]
    rec.catalogue.add(VideoInfo("cat", "nature", "c", 0.0, None, "a cat"), basis(0), [])  # re-embedded: nothing
    assert [v for v, _ in rec.search("cats", 5)] == ["dog"] and "cat" in rec.catalogue
    rec.catalogue.add(VideoInfo("dog", "nature", "c", 0.0, None, "a dog"), basis(1))  # no search vector given
    assert [v for v, _ in rec.search("cats", 5)] == ["dog"], "None leaves the search store as it is"


def test_without_a_query_path_search_is_empty(stores, tmp_path):
    rec = rec_for(stores, tmp_path)
    rec.catalogue.add(VideoInfo("cat", "nature", "c", 0.0, None, "a cat"), basis(0), unit(1, 0, 0, 0))
    assert rec.search("cats", 5) == []


@pytest.fixture(scope="module")
def queries():
    settings = Settings()
    return QueryEncoder(settings.models, settings.encoder)


def test_real_queries_find_the_video_whose_words_match(queries, tmp_path):
    s = Stores(tmp_path, search_dim=queries.dim)
    try:
        rec = rec_for(s, tmp_path, queries.vectors)
        titles = {"rocket": "a rocket launch into space", "cat": "a cat asleep on a sofa",
                  "coffee": "a cup of coffee on a table"}
        for i, (video, vector) in enumerate(zip(titles, queries.vectors(list(titles.values())))):
            rec.catalogue.add(VideoInfo(video, None, "c", 0.0, None, titles[video]), basis(i), vector)
        assert rec.search("rocket", 3)[0][0] == "rocket"
        assert rec.search("kitten", 3)[0][0] == "cat"
        assert rec.search("the video of a", 3) == [] and rec.search("?!", 3) == []
    finally:
        s.close()


def test_the_api_answers_an_empty_list_for_stop_words_and_422_for_a_long_query(stores, tmp_path):
    rec = rec_for(stores, tmp_path, fake_queries({"cats": unit(1, 0, 0, 0), "the": None}))
    rec.catalogue.add(VideoInfo("cat", "nature", "c", 0.0, None, "a cat", ("tabby", "tiger cat")), basis(0),
                      unit(1, 0, 0, 0))
    app = FastAPI()
    app.state.recommender = rec
    app.include_router(create_router(100))
    client = TestClient(app)
    assert client.get("/v1/search", params={"q": "the"}).json() == []
    found = client.get("/v1/search", params={"q": "cats"}).json()
    assert found == [{"video_id": "cat", "score": 1.0, "topic": "nature", "concepts": ["tabby", "tiger cat"]}]
    assert client.get("/v1/search", params={"q": "x" * 201}).status_code == 422
    assert client.get("/v1/search", params={"q": ""}).status_code == 422


# --------------------------------------------------------------------------- model versions


def test_embeddings_of_another_model_or_size_are_counted_and_skipped(stores, tmp_path):
    rec = rec_for(stores, tmp_path)
    logged: set[str] = set()
    before = {r: skipped(r) for r in metrics.SKIP_REASONS}

    async def feed() -> None:
        add_video(rec, embedded("ok", basis(0), unit(1, 0, 0, 0)), logged)
        add_video(rec, embedded("old", basis(1), unit(1, 0, 0, 0), version="backbone-0+mean+text-0"), logged)
        add_video(rec, embedded("wide", [0.1] * (DIM * 2), unit(1, 0, 0, 0)), logged)
        add_video(rec, embedded("wide-search", basis(2), [0.5] * (SEARCH_DIM + 1)), logged)
        add_video(rec, embedded("nan", [float("nan")] + basis(0)[1:], unit(1, 0, 0, 0)), logged)
        # a known video re-embedded by another model keeps what the catalogue holds for it
        add_video(rec, embedded("ok", basis(3), [], version="other"), logged)

    asyncio.run(feed())
    assert {r: skipped(r) - before[r] for r in metrics.SKIP_REASONS} == {
        "model_version": 2, "vector_size": 2, "invalid_vector": 1}
    assert list(rec.catalogue.vectors) == ["ok"] and np.allclose(rec.catalogue.vector("ok"), basis(0))
    assert stores.store.count() == 1 and stores.search.count() == 1
    assert [h.id for h in stores.search.search(unit(1, 0, 0, 0), 5)] == ["ok"]


# --------------------------------------------------------------------------- user vectors of another model


def like(user: str, video: str, n: int) -> WatchEvent:
    return WatchEvent(user_id=user, video_id=video, action="like", event_id=f"{user}-{n}", ts=T0)


def stored_state(tmp_path, stores: Stores, full: bool = True) -> None:
    """A partition stored by a recommender of ``stores``' model: user u has vectors, seen and liked videos
    (``full``: as a full snapshot, the user's row; else as a delta, the user's steps)."""
    for i in range(3):
        stores.catalogue.add(VideoInfo(f"v{i}", "nature", "c", 0.0, None, ""), basis(i, stores.store.dim))
    rec = rec_for(stores, tmp_path)
    rec.assign(0)
    rec.apply(like("u", "v0", 0), 0)
    rec.apply(like("u", "v1", 1), 0)
    rec.snapshot(0, 2, full=full).write()
    rec.close()


def changed_model(tmp_path, change: str, full: bool) -> Stores:
    """A partition stored under one model (``stored_state``), and the stores of the model that replaced it: the
    same version at half the size, or another version at the same size, holding the same three videos."""
    old = Stores(tmp_path / "old", dim=DIM)
    stored_state(tmp_path, old, full=full)
    old.close()
    new = Stores(tmp_path / "new", dim=DIM // 2 if change == "size" else DIM,
                 version=VERSION if change == "size" else "backbone-b+mean+text-a")
    for i in range(3):
        new.catalogue.add(VideoInfo(f"v{i}", "nature", "c", 0.0, None, ""), basis(i, new.store.dim))
    return new


@pytest.mark.parametrize("change", ["size", "version"])
def test_user_vectors_of_another_model_are_dropped_at_load_and_rebuilt(tmp_path, change):
    new = changed_model(tmp_path, change, full=True)
    try:
        dim = new.store.dim
        rec = rec_for(new, tmp_path)
        dropped = metrics.user_vectors_dropped._value.get()
        assert rec.assign(0) == 2
        user = rec.user("u")
        assert user.long is None and user.short is None and user.negative is None
        assert user.seen == ["v0", "v1"] and user.recent_positive == ["v0", "v1"], "ids are kept"
        assert metrics.user_vectors_dropped._value.get() == dropped + 1
        assert rec.feed("u", 3, now=T0.timestamp()), "the feed works with the user's vectors gone"
        rec.apply(like("u", "v2", 2), 0)  # later events rebuild the vectors, in the catalogue's size
        assert len(rec.user("u").long) == dim and np.allclose(rec.user("u").long / np.linalg.norm(rec.user("u").long),
                                                              basis(2, dim))
        rec.commit(0, 3)
        rec.close()
        store = PartitionStore(tmp_path / "state", "watch.events", 0)
        try:
            assert store.model_version() == new.catalogue.model_version
            assert len(rec.users_of(store.load())["u"].long) == dim
        finally:
            store.close()
        again = rec_for(new, tmp_path)
        again.assign(0)
        assert metrics.user_vectors_dropped._value.get() == dropped + 1, "nothing dropped twice"
        again.close()
    finally:
        new.close()


@pytest.mark.parametrize("change", ["size", "version"])
def test_stored_steps_of_another_model_move_no_vector_of_another_version(tmp_path, change):
    """A user stored only as steps (a delta) has no vectors to drop: the steps are applied again with the new
    catalogue's vectors when the model version is the same (a size change: the vectors are rebuilt in the new
    size), and without vectors when the version differs (that model's vectors would be dropped)."""
    new = changed_model(tmp_path, change, full=False)
    try:
        dim = new.store.dim
        rec = rec_for(new, tmp_path)
        assert rec.assign(0) == 2
        user = rec.user("u")
        assert user.seen == ["v0", "v1"] and user.recent_positive == ["v0", "v1"] and user.events == 2
        if change == "version":
            assert user.long is None and user.short is None
        else:
            assert len(user.long) == dim and np.allclose(user.long[:2] / np.linalg.norm(user.long), [2 ** -0.5] * 2,
                                                         atol=0.05)
        rec.close()
    finally:
        new.close()


def test_dropped_vectors_are_stored_even_without_a_later_event(tmp_path):
    old = Stores(tmp_path / "old", dim=DIM)
    stored_state(tmp_path, old)
    old.close()
    new = Stores(tmp_path / "new", dim=DIM // 2)
    try:
        rec = rec_for(new, tmp_path)
        rec.assign(0)
        rec.commit(0)
        rec.close()
        store = PartitionStore(tmp_path / "state", "watch.events", 0)
        try:
            user = rec.users_of(store.load())["u"]
            assert user.long is None and user.seen == ["v0", "v1"] and store.model_version() == VERSION
        finally:
            store.close()
    finally:
        new.close()


def test_steps_stored_under_an_old_model_never_meet_the_new_vectors(tmp_path):
    """Steps stored under model A and restored under model B moved no vector; the next flush stores those users
    whole, so a later restore (its latest flush now says model B) does not apply A's steps with B's vectors."""
    new = changed_model(tmp_path, "version", full=False)
    try:
        rec = rec_for(new, tmp_path)
        rec.assign(0)
        rec.apply(like("u", "v2", 2), 0)
        live = rec.user("u").to_row()
        rec.commit(0, 3)
        rec.close()
        again = rec_for(new, tmp_path)
        again.assign(0)
        assert again.user("u").to_row() == live
        again.close()
    finally:
        new.close()
