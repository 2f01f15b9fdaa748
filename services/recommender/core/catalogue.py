"""The recommender's view of the videos: vectors and the payload fields feeds filter on.

Built from ``videos.embedded``; retrieval goes through the VectorStore (Qdrant), scoring and
diversity use the vectors kept here. Text search goes through a second store of the videos' search
vectors (the text model's space); a video without one is not searchable. A catalogue holds the
vectors of one model version: an embedding of another version or size is refused (``refusal``).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
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


class Catalogue:
    def __init__(self, store: VectorStore, search_store: VectorStore | None = None,
                 model_version: str | None = None) -> None:
        """``search_store``: the search vectors (None: no text search); ``model_version``: the only
        version accepted (None: any, for tools that build their own vectors)."""
        self.store = store
        self.search_store = search_store
        self.model_version = model_version
        self.vectors: dict[str, np.ndarray] = {}
        self.info: dict[str, VideoInfo] = {}
        self._by_time: list[tuple[float, str]] = []  # (created_at, video_id), kept sorted
        self.ids: list[str] = []  # in arrival order, for uniform sampling

    def __contains__(self, video_id: str) -> bool:
        return video_id in self.vectors

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
            self.vectors[info.video_id] = vec
            self.info[info.video_id] = info

    def text_search(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """The ``n`` videos whose search vectors are nearest ``vector`` (a query in the search space)."""
        if self.search_store is None:
            return []
        return [(h.id, h.score) for h in self.search_store.search(vector, n, with_payload=False)]

    def vector(self, video_id: str) -> np.ndarray | None:
        return self.vectors.get(video_id)

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
