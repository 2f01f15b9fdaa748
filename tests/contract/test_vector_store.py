"""One contract, every VectorStore backend available here.

Always: the embedded engine (qdrant-edge) and qdrant-client's local mode (the same class that
talks to a server). With QDRANT_URL set: a real Qdrant server too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from shared.vectors import EdgeVectorStore, QdrantServerStore, StoreLocked, VectorRecord, VectorStore, Where

DIM = 16
BACKENDS = ["edge", "client-local"] + (["server"] if os.environ.get("QDRANT_URL") else [])


def make_store(kind: str, tmp_path) -> VectorStore:
    if kind == "edge":
        return EdgeVectorStore(tmp_path / "shard", DIM)
    if kind == "client-local":
        return QdrantServerStore("videos", DIM, location=":memory:")
    return QdrantServerStore(f"contract_{uuid.uuid4().hex[:8]}", DIM, url=os.environ["QDRANT_URL"])


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    s = make_store(request.param, tmp_path)
    yield s
    s.close()


def unit(rng: np.random.Generator) -> list[float]:
    v = rng.normal(size=DIM)
    return (v / np.linalg.norm(v)).tolist()


@pytest.fixture
def corpus() -> list[VectorRecord]:
    rng = np.random.default_rng(0)
    topics = ["sports", "food", "travel"]
    return [VectorRecord(f"video-{i}", unit(rng), {"topic": topics[i % 3], "creator_id": f"c{i % 4}", "duration": float(i)})
            for i in range(60)]


def brute_force(corpus, query, k, keep=lambda r: True):
    vecs = np.array([r.vector for r in corpus if keep(r)])
    ids = [r.id for r in corpus if keep(r)]
    sims = vecs @ np.asarray(query) / np.linalg.norm(vecs, axis=1) / np.linalg.norm(query)
    return [ids[i] for i in np.argsort(-sims)[:k]]


def test_satisfies_protocol(store):
    assert isinstance(store, VectorStore)


def test_upsert_is_idempotent_by_external_id(store, corpus):
    store.upsert(corpus)
    store.upsert(corpus[:10])
    assert store.count() == len(corpus)
    store.upsert([VectorRecord("video-0", corpus[1].vector, {"topic": "changed"})])
    assert store.count() == len(corpus)
    assert store.get(["video-0"])[0].payload["topic"] == "changed"


def test_exact_search_matches_brute_force_cosine(store, corpus):
    store.upsert(corpus)
    query = corpus[5].vector
    hits = store.search(query, 10, exact=True)
    assert [h.id for h in hits] == brute_force(corpus, query, 10)
    assert hits[0].id == "video-5" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_filters_match_exclude_range_and_ids(store, corpus):
    store.index_fields({"topic": "keyword", "creator_id": "keyword", "duration": "float"})
    store.upsert(corpus)
    query = corpus[0].vector
    where = Where(match={"topic": "food"}, exclude={"creator_id": ["c1"]}, ranges={"duration": (10.0, 50.0)},
                  exclude_ids=["video-13"])

    def keep(r):
        return (r.payload["topic"] == "food" and r.payload["creator_id"] != "c1"
                and 10 <= r.payload["duration"] <= 50 and r.id != "video-13")

    hits = store.search(query, 5, where=where, exact=True)
    assert [h.id for h in hits] == brute_force(corpus, query, 5, keep)
    assert store.count(where) == sum(keep(r) for r in corpus)
    assert store.count(Where(match={"topic": ["food", "sports"]})) == 40
    bare = store.search(query, 5, where=where, exact=True, with_payload=False)
    assert [(h.id, h.payload) for h in bare] == [(h.id, {}) for h in hits]


def test_excluded_ids_apply_to_each_search_as_given(store, corpus):
    """The same exclusions twice (a feed's two ANN queries), then others: each search honours its own."""
    store.upsert(corpus)
    query = corpus[0].vector
    seen = ["video-0", "video-7", "video-30"]
    for exclude in (seen, seen, list(seen), seen[:1], ["video-5"]):
        hits = store.search(query, 8, where=Where(exclude_ids=exclude), exact=True, with_payload=False)
        assert [h.id for h in hits] == brute_force(corpus, query, 8, lambda r: r.id not in exclude)


def test_get_returns_payload_and_vectors_in_request_order(store, corpus):
    store.upsert(corpus)
    got = store.get(["video-7", "video-3", "missing"], with_vectors=True)
    assert [r.id for r in got] == ["video-7", "video-3"]
    assert np.allclose(got[0].vector, corpus[7].vector, atol=1e-5)
    assert got[1].payload == corpus[3].payload


def test_delete_removes_points(store, corpus):
    store.upsert(corpus)
    store.delete(["video-1", "video-2"])
    assert store.count() == len(corpus) - 2
    assert store.get(["video-1"]) == []


def test_rejects_wrong_dimension_and_nan(store):
    with pytest.raises(ValueError, match="dimensions"):
        store.upsert([VectorRecord("x", [1.0] * (DIM + 1))])
    with pytest.raises(ValueError, match="NaN"):
        store.search([float("nan")] * DIM, 3)


def test_edge_store_persists_across_reopen(tmp_path, corpus):
    """Points written before the shard was reopened are there, and named without payload (from their payload at
    their first hit: the store's in-memory ids start empty)."""
    store = EdgeVectorStore(tmp_path / "shard", DIM)
    store.upsert(corpus)
    store.close()
    reopened = EdgeVectorStore(tmp_path / "shard", DIM)
    try:
        assert reopened.count() == len(corpus)
        query = corpus[9].vector
        for _ in range(2):  # first hit, then from memory
            assert [h.id for h in reopened.search(query, 10, exact=True, with_payload=False)] == brute_force(
                corpus, query, 10)
        assert reopened.search(query, 1, exact=True)[0].id == "video-9"
    finally:
        reopened.close()


def test_search_without_payload_names_every_hit(store, corpus):
    """Ids of hits asked for without payload: the same as with it, after upserts, re-upserts and deletes."""
    store.upsert(corpus)
    store.upsert([VectorRecord("video-0", corpus[1].vector, {"topic": "changed"})])
    store.delete(["video-2"])
    query = corpus[1].vector
    full = store.search(query, 20, exact=True)
    bare = store.search(query, 20, exact=True, with_payload=False)
    assert [h.id for h in bare] == [h.id for h in full]
    assert [h.score for h in bare] == pytest.approx([h.score for h in full], abs=1e-6)
    assert "video-2" not in {h.id for h in bare} and {"video-0", "video-1"} <= {h.id for h in bare}


def test_edge_store_refuses_a_second_process(tmp_path):
    store = EdgeVectorStore(tmp_path / "shard", DIM)
    try:
        code = ("import sys; from pathlib import Path; from shared.vectors import EdgeVectorStore, StoreLocked\n"
                f"try:\n    EdgeVectorStore(Path({str(tmp_path / 'shard')!r}), {DIM})\n"
                "except StoreLocked as e:\n    print(e); sys.exit(3)\n")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert result.returncode == 3, result.stderr
        assert "open in another process" in result.stdout
        store.upsert([VectorRecord("still-works", [1.0] + [0.0] * (DIM - 1))])
        store.flush()
        assert store.count() == 1
    finally:
        store.close()
    with pytest.raises(StoreLocked):
        a = EdgeVectorStore(tmp_path / "other", DIM)
        try:
            EdgeVectorStore(tmp_path / "other", DIM)
        finally:
            a.close()
