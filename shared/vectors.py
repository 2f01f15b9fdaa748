"""Vector storage behind one protocol, with two Qdrant implementations.

* :class:`EdgeVectorStore`: Qdrant's own engine in-process (``qdrant-edge-py``), the embedded
  default. One shard is one collection, on disk, owned by one process (an OS lock enforces it).
* :class:`QdrantServerStore`: ``qdrant-client`` against a Qdrant server (``QDRANT_URL``); the same
  class also drives qdrant-client's local mode, which the contract tests use.

Callers use external string ids (``video_id``); the Qdrant point id is a UUID derived from it,
so upserting the same id twice leaves one point. No other module imports a Qdrant package.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from shared.settings import QdrantSettings

ID_FIELD = "external_id"
_NAMESPACE = uuid.UUID("6f0c8f5e-3b1a-4c55-9a52-0c1b5c7d2e11")
FieldType = Literal["keyword", "integer", "float", "bool", "datetime"]
Scalar = str | int | bool


@lru_cache(maxsize=1 << 17)
def _point_uuid(external_id: str) -> uuid.UUID:
    return uuid.UUID(point_id(external_id))


@lru_cache(maxsize=1 << 17)
def point_id(external_id: str) -> str:
    """The Qdrant point id for an external id: stable across processes and backends. Cached: a feed excludes up
    to 500 seen videos by point id, and a UUID5 costs tens of microseconds."""
    return str(uuid.uuid5(_NAMESPACE, external_id))


@dataclass(frozen=True)
class VectorRecord:
    id: str
    vector: Sequence[float]
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Where:
    """A payload filter both backends understand.

    ``match``: field equals the value (or any of the values, for a list); ``exclude``: field
    equals none of the values; ``ranges``: (gte, lte) bounds, either may be None;
    ``exclude_ids``: external ids that must not be returned.
    """

    match: Mapping[str, Scalar | Sequence[Scalar]] = field(default_factory=dict)
    exclude: Mapping[str, Sequence[Scalar]] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    exclude_ids: Sequence[str] = ()


class StoreLocked(RuntimeError):
    """Another process owns this embedded shard."""


@runtime_checkable
class VectorStore(Protocol):
    dim: int

    def upsert(self, records: Sequence[VectorRecord]) -> None: ...
    def get(self, ids: Sequence[str], with_vectors: bool = False) -> list[VectorRecord]: ...
    def delete(self, ids: Sequence[str]) -> None: ...
    def search(self, vector: Sequence[float], k: int, where: Where | None = None, exact: bool = False,
               with_payload: bool = True, min_score: float | None = None, ef: int | None = None) -> list[Hit]:
        """Nearest k; ``with_payload=False`` returns ids and scores only (cheaper: no payload copied);
        ``min_score``: only hits scoring at least that much (Qdrant's score threshold); ``ef``: the HNSW
        search breadth (more: closer to exact, slower; None: the collection's default)."""
        ...
    def count(self, where: Where | None = None) -> int: ...
    def index_fields(self, fields: Mapping[str, FieldType]) -> None: ...
    def close(self) -> None: ...


def _check(vector: Sequence[float], dim: int) -> list[float]:
    arr = np.asarray(vector, dtype=np.float32).reshape(-1)
    if arr.shape[0] != dim:
        raise ValueError(f"vector has {arr.shape[0]} dimensions, the store holds {dim}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("vector contains NaN or infinity")
    return arr.tolist()


def _payload(record: VectorRecord) -> dict[str, Any]:
    return {**record.payload, ID_FIELD: record.id}


def _strip(payload: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    data = dict(payload or {})
    return data.pop(ID_FIELD, ""), data


# --------------------------------------------------------------------------- embedded


class EdgeVectorStore:
    """Qdrant Edge shard in this process.

    The shard is this process's alone, so it keeps each point's external id beside it in memory (point UUID ->
    id, filled as points are written, and for points of a shard loaded from disk at their first hit): a search
    that needs no payload then asks Qdrant for none, which halves an ANN query at 100k points (the payload
    read was most of it)."""

    def __init__(self, path: Path, dim: int) -> None:
        import qdrant_edge as qe

        self._qe = qe
        self.dim = dim
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(str(self.path) + ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StoreLocked(f"embedded vector store {self.path} is open in another process; "
                              "each process needs its own shard, or use a Qdrant server (QDRANT_URL)") from None
        self._lock.write(str(os.getpid()))
        self._lock.flush()
        config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine))
        if self.path.exists() and any(self.path.iterdir()):
            self._shard = qe.EdgeShard.load(str(self.path), config)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self._shard = qe.EdgeShard.create(str(self.path), config)
        self._ids: dict[int, str] = {}  # point (its UUID as an int) -> external id, of the points written or hit
        self._last_ids_filter: tuple[tuple[str, ...], Any] = ((), None)  # the latest ids-only filter, with its ids

    def _filter(self, where: Where | None):
        if where is None:
            return None
        if where.exclude_ids and not (where.match or where.exclude or where.ranges):  # a feed's already-seen filter
            key = tuple(where.exclude_ids)
            if self._last_ids_filter[0] != key:  # built once for both of a feed's ANN queries (~1 ms at 500 ids)
                self._last_ids_filter = (key, self._build_filter(where))
            return self._last_ids_filter[1]
        return self._build_filter(where)

    def _build_filter(self, where: Where):
        qe = self._qe
        must, must_not = [], []
        for key, value in where.match.items():
            match = qe.MatchAny(list(value)) if isinstance(value, (list, tuple)) else qe.MatchValue(value)
            must.append(qe.FieldCondition(key=key, match=match))
        for key, values in where.exclude.items():
            must_not.append(qe.FieldCondition(key=key, match=qe.MatchAny(list(values))))
        for key, (gte, lte) in where.ranges.items():
            must.append(qe.FieldCondition(key=key, range=qe.RangeFloat(gte=gte, lte=lte)))
        if where.exclude_ids:  # UUID objects: Qdrant takes them faster than their strings
            must_not.append(qe.HasIdCondition({_point_uuid(i) for i in where.exclude_ids}))
        return qe.Filter(must=must or None, must_not=must_not or None)

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        if not records:
            return
        qe = self._qe
        points = [qe.Point(point_id(r.id), _check(r.vector, self.dim), _payload(r)) for r in records]
        self._shard.update(qe.UpdateOperation.upsert_points(points))
        self._ids.update((_point_uuid(r.id).int, r.id) for r in records)

    def get(self, ids: Sequence[str], with_vectors: bool = False) -> list[VectorRecord]:
        found = self._shard.retrieve([point_id(i) for i in ids], with_payload=True, with_vector=with_vectors)
        out = []
        for rec in found:
            ext, payload = _strip(rec.payload)
            vec = rec.vector if with_vectors else ()
            out.append(VectorRecord(ext, list(vec) if vec else [], payload))
        order = {i: n for n, i in enumerate(ids)}
        return sorted(out, key=lambda r: order.get(r.id, len(order)))

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._shard.update(self._qe.UpdateOperation.delete_points([point_id(i) for i in ids]))
            for i in ids:
                self._ids.pop(_point_uuid(i).int, None)

    def search(self, vector: Sequence[float], k: int, where: Where | None = None, exact: bool = False,
               with_payload: bool = True, min_score: float | None = None, ef: int | None = None) -> list[Hit]:
        qe = self._qe
        request = qe.QueryRequest(limit=k, query=qe.Query.Nearest(_check(vector, self.dim)), with_payload=with_payload,
                                  filter=self._filter(where), params=qe.SearchParams(exact=exact, hnsw_ef=ef),
                                  score_threshold=min_score)
        found = self._shard.query(request)
        if with_payload:
            hits = []
            for p in found:
                ext, payload = _strip(p.payload)
                hits.append(Hit(ext, float(p.score), payload))
                self._ids[p.id.int] = ext
            return hits
        ids = self._ids
        keys = [p.id.int for p in found]  # an int: a UUID's own hash and equality are Python code
        unknown = [str(uuid.UUID(int=k)) for k in keys if k not in ids]
        if unknown:  # points of a shard loaded from disk, hit for the first time: their ids from the payload
            for rec in self._shard.retrieve(unknown, with_payload=True, with_vector=False):
                ids[uuid.UUID(str(rec.id)).int] = _strip(rec.payload)[0]
        return [Hit(ids.get(k, ""), p.score, {}) for k, p in zip(keys, found)]

    def count(self, where: Where | None = None) -> int:
        return self._shard.count(self._qe.CountRequest(exact=True, filter=self._filter(where)))

    def index_fields(self, fields: Mapping[str, FieldType]) -> None:
        qe = self._qe
        kinds = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer,
                 "float": qe.PayloadSchemaType.Float, "bool": qe.PayloadSchemaType.Bool,
                 "datetime": qe.PayloadSchemaType.Datetime}
        for name, kind in fields.items():
            self._shard.update(qe.UpdateOperation.create_field_index(name, kinds[kind]))

    def optimize(self) -> None:
        """Build the HNSW index now (blocking); searches are exact-by-scan until then."""
        self._shard.optimize()

    def flush(self) -> None:
        self._shard.flush()

    def close(self) -> None:
        shard, self._shard = getattr(self, "_shard", None), None
        if shard is not None:
            shard.flush()
            shard.close()
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()


# --------------------------------------------------------------------------- server


class QdrantServerStore:
    """A collection on a Qdrant server via qdrant-client (or qdrant-client's local mode)."""

    def __init__(self, collection: str, dim: int, *, url: str | None = None, api_key: str | None = None,
                 location: str | None = None, timeout_s: float = 10.0) -> None:
        from qdrant_client import QdrantClient, models

        self._m = models
        self.dim = dim
        self.collection = collection
        if url:
            self._client = QdrantClient(url=url, api_key=api_key, timeout=int(timeout_s))
        else:
            self._client = QdrantClient(location=location or ":memory:")
        if not self._client.collection_exists(collection):
            self._client.create_collection(collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE))

    def _filter(self, where: Where | None):
        if where is None:
            return None
        m = self._m
        must, must_not = [], []
        for key, value in where.match.items():
            match = m.MatchAny(any=list(value)) if isinstance(value, (list, tuple)) else m.MatchValue(value=value)
            must.append(m.FieldCondition(key=key, match=match))
        for key, values in where.exclude.items():
            must_not.append(m.FieldCondition(key=key, match=m.MatchAny(any=list(values))))
        for key, (gte, lte) in where.ranges.items():
            must.append(m.FieldCondition(key=key, range=m.Range(gte=gte, lte=lte)))
        if where.exclude_ids:
            must_not.append(m.HasIdCondition(has_id=[point_id(i) for i in where.exclude_ids]))
        return m.Filter(must=must or None, must_not=must_not or None)

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        if records:
            points = [self._m.PointStruct(id=point_id(r.id), vector=_check(r.vector, self.dim), payload=_payload(r))
                      for r in records]
            self._client.upsert(self.collection, points=points, wait=True)

    def get(self, ids: Sequence[str], with_vectors: bool = False) -> list[VectorRecord]:
        found = self._client.retrieve(self.collection, ids=[point_id(i) for i in ids], with_payload=True,
                                      with_vectors=with_vectors)
        out = []
        for rec in found:
            ext, payload = _strip(rec.payload)
            out.append(VectorRecord(ext, list(rec.vector) if with_vectors and rec.vector else [], payload))
        order = {i: n for n, i in enumerate(ids)}
        return sorted(out, key=lambda r: order.get(r.id, len(order)))

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._client.delete(self.collection, points_selector=self._m.PointIdsList(points=[point_id(i) for i in ids]),
                                wait=True)

    def search(self, vector: Sequence[float], k: int, where: Where | None = None, exact: bool = False,
               with_payload: bool = True, min_score: float | None = None, ef: int | None = None) -> list[Hit]:
        result = self._client.query_points(self.collection, query=_check(vector, self.dim), limit=k,
                                           score_threshold=min_score,
                                           with_payload=True if with_payload else [ID_FIELD],
                                           query_filter=self._filter(where),
                                           search_params=self._m.SearchParams(exact=exact, hnsw_ef=ef))
        hits = []
        for p in result.points:
            ext, payload = _strip(p.payload)
            hits.append(Hit(ext, float(p.score), payload))
        return hits

    def count(self, where: Where | None = None) -> int:
        return self._client.count(self.collection, count_filter=self._filter(where), exact=True).count

    def index_fields(self, fields: Mapping[str, FieldType]) -> None:
        for name, kind in fields.items():
            self._client.create_payload_index(self.collection, field_name=name, field_schema=kind)

    def close(self) -> None:
        self._client.close()


def open_store(collection: str, dim: int, settings: QdrantSettings) -> VectorStore:
    """The server when ``QDRANT_URL`` is set, otherwise an embedded shard under ``data_dir``."""
    if settings.url:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return QdrantServerStore(collection, dim, url=settings.url, api_key=key, timeout_s=settings.timeout_s)
    return EdgeVectorStore(settings.data_dir / collection, dim)

