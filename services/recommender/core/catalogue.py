"""The recommender's view of the videos: vectors and the payload fields feeds filter on.

Built from ``videos.embedded``; retrieval goes through the VectorStore (Qdrant), scoring and
diversity use the vectors kept here. Text search goes through a second store of the videos' search
vectors (the text model's space); a video without one is not searchable. A catalogue holds the
vectors of one model version: an embedding of another version or size is refused (``refusal``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.vectors import VectorRecord, VectorStore, Where


@dataclass(frozen=True)
class VideoInfo:
    video_id: str
    topic: str | None
    creator_id: str
    created_at: float
    duplicate_of: str | None
    title: str
    concepts: tuple[str, ...] = ()  # what the video shows (ImageNet class names), strongest first
    tags: tuple[str, ...] = ()  # the creator's tags
    covers: tuple[str, ...] = ()  # cover candidates, best first, relative to the encoder's artefacts folder


class VectorRows(Mapping[str, np.ndarray]):
    """The catalogue's unit vectors as the rows of one float32 matrix (a video keeps its row; a new vector
    overwrites it), read like a dict of vectors; :meth:`take` gathers many rows in one numpy step. Columns of
    per-video numbers kept beside them (``Catalogue``) use the same rows."""

    def __init__(self) -> None:
        self.row: dict[str, int] = {}
        self.matrix = np.zeros((0, 0), np.float32)

    def put(self, video_id: str, vector: np.ndarray) -> int:
        """``video_id``'s vector (its row's index returned: a new video takes the next row)."""
        r = self.row.get(video_id)
        if r is None:
            r = len(self.row)
            if r >= len(self.matrix):
                grown = np.zeros((max(1024, len(self.matrix) * 3 // 2), len(vector)), np.float32)
                if r:
                    grown[:r] = self.matrix[:r]
                self.matrix = grown
            self.row[video_id] = r
        self.matrix[r] = vector
        return r

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """Row indices of ``ids`` (all in the catalogue)."""
        return np.fromiter(map(self.row.__getitem__, ids), np.intp, len(ids))

    def take(self, ids: Sequence[str]) -> np.ndarray:
        """(len(ids), dim): the vectors of ``ids`` (all in the catalogue), in that order."""
        return self.matrix[self.rows(ids)]

    def __getitem__(self, video_id: str) -> np.ndarray:
        return self.matrix[self.row[video_id]]

    def get(self, video_id: str, default: np.ndarray | None = None) -> np.ndarray | None:  # type: ignore[override]
        r = self.row.get(video_id)
        return default if r is None else self.matrix[r]

    def __contains__(self, video_id: object) -> bool:
        return video_id in self.row

    def __iter__(self) -> Iterator[str]:
        return iter(self.row)

    def __len__(self) -> int:
        return len(self.row)


class Catalogue:
    def __init__(self, store: VectorStore, search_store: VectorStore | None = None,
                 model_version: str | None = None) -> None:
        """``search_store``: the search vectors (None: no text search); ``model_version``: the only
        version accepted (None: any, for tools that build their own vectors)."""
        self.store = store
        self.search_store = search_store
        self.model_version = model_version
        self.vectors = VectorRows()
        self.created = np.zeros(0)  # created_at of each row of ``vectors``
        self.topics = np.zeros(0, np.int32)  # its topic's code in ``topic_codes`` (-1: none)
        self.topic_codes: dict[str, int] = {}
        self.duplicates: set[str] = set()  # videos that are re-uploads of another (``duplicate_of`` set)
        self.info: dict[str, VideoInfo] = {}
        self._by_time: list[tuple[float, str]] = []  # (created_at, video_id), kept sorted
        self.ids: list[str] = []  # in arrival order, for uniform sampling

    def __contains__(self, video_id: str) -> bool:
        return video_id in self.vectors.row

    def __len__(self) -> int:
        return len(self.vectors)

    def refusal(self, model_version: str, vector: Sequence[float], search: Sequence[float] = ()) -> str | None:
        """Why an embedding cannot join this catalogue (a metric label), or None: another model version,
        a vector (or search vector) of another size than its store's, a value that is not finite."""
        if self.model_version is not None and model_version != self.model_version:
            return "model_version"
        if len(vector) != self.store.dim or (len(search) and self.search_store is not None
                                             and len(search) != self.search_store.dim):
            return "vector_size"
        if not (np.all(np.isfinite(np.asarray(vector, np.float32)))
                and np.all(np.isfinite(np.asarray(search, np.float32)))):
            return "invalid_vector"
        return None

    def add(self, info: VideoInfo, vector: Sequence[float], search: Sequence[float] | None = None) -> None:
        """``search``: the video's search vector; empty (or zero): not searchable, a stored one is
        removed; None: the search store is left as it is."""
        self.add_many([(info, vector, search)])

    def add_many(self, videos: Sequence[tuple[VideoInfo, Sequence[float]] | tuple[VideoInfo, Sequence[float], Any]]
                 ) -> None:
        """(info, vector) or (info, vector, search vector) per video; the stores first, then the view here."""
        records, searchable, unsearchable, held = [], [], [], []
        for info, vector, *rest in videos:
            vec = unit(vector)
            payload = {"topic": info.topic or "", "creator_id": info.creator_id, "created_at": info.created_at,
                       "duplicate_of": info.duplicate_of or "", "concepts": list(info.concepts)}
            records.append(VectorRecord(info.video_id, vec.tolist(), payload))
            held.append((info, vec))
            search = rest[0] if rest else None
            if search is None or self.search_store is None:
                continue
            found = unit(search) if len(search) else None
            if found is not None and found.any():
                searchable.append(VectorRecord(info.video_id, found.tolist(), payload))
            else:
                unsearchable.append(info.video_id)
        self.store.upsert(records)
        if self.search_store is not None:
            self.search_store.upsert(searchable)
            self.search_store.delete(unsearchable)
        for info, vec in held:
            if info.video_id not in self.info:
                bisect.insort(self._by_time, (info.created_at, info.video_id))
                self.ids.append(info.video_id)
            r = self.vectors.put(info.video_id, vec)
            if r >= len(self.created):
                size = len(self.vectors.matrix)
                self.created = np.concatenate([self.created, np.zeros(size - len(self.created))])
                self.topics = np.concatenate([self.topics, np.full(size - len(self.topics), -1, np.int32)])
            self.created[r] = info.created_at
            self.topics[r] = self.topic_codes.setdefault(info.topic, len(self.topic_codes)) if info.topic else -1
            self.info[info.video_id] = info
            if info.duplicate_of:
                self.duplicates.add(info.video_id)
            else:
                self.duplicates.discard(info.video_id)

    def text_search(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """The ``n`` videos whose search vectors are nearest ``vector`` (a query in the search space)."""
        if self.search_store is None:
            return []
        return [(h.id, h.score) for h in self.search_store.search(vector, n, with_payload=False)]

    def vector(self, video_id: str) -> np.ndarray | None:
        r = self.vectors.row.get(video_id)  # once per applied event: no call through the mapping
        return None if r is None else self.vectors.matrix[r]

    def search(self, vector: np.ndarray, n: int, exclude: Sequence[str] = (), ef: int | None = None
               ) -> list[tuple[str, float]]:
        """``ef``: the HNSW search breadth (None: the store's default)."""
        where = Where(exclude_ids=list(exclude)[-500:]) if exclude else None
        hits = self.store.search(vector, n, where=where, with_payload=False, ef=ef)
        return [(h.id, h.score) for h in hits]

    def fresh(self, n: int, now: float, window_s: float) -> list[str]:
        """The newest videos uploaded within ``window_s`` before ``now`` (none from the future)."""
        end = bisect.bisect_right(self._by_time, (now, "\uffff"))
        out = []
        for created, video in reversed(self._by_time[max(0, end - n):end]):
            if now - created <= window_s:
                out.append(video)
        return out


def unit(vector: Sequence[float]) -> np.ndarray:
    vec = np.asarray(vector, np.float32)
    return vec / (np.linalg.norm(vec) + 1e-12)
