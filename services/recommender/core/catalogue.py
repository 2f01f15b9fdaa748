"""The recommender's view of the videos: vectors and the payload fields feeds filter on.

Built from ``videos.embedded``; retrieval goes through the VectorStore (Qdrant), scoring and
diversity use the vectors kept here.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

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


class Catalogue:
    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self.vectors: dict[str, np.ndarray] = {}
        self.info: dict[str, VideoInfo] = {}
        self._by_time: list[tuple[float, str]] = []  # (created_at, video_id), kept sorted
        self.ids: list[str] = []  # in arrival order, for uniform sampling

    def __contains__(self, video_id: str) -> bool:
        return video_id in self.vectors

    def __len__(self) -> int:
        return len(self.vectors)

    def add(self, info: VideoInfo, vector: Sequence[float]) -> None:
        self.add_many([(info, vector)])

    def add_many(self, videos: Sequence[tuple[VideoInfo, Sequence[float]]]) -> None:
        records = []
        for info, vector in videos:
            vec = np.asarray(vector, np.float32)
            vec = vec / (np.linalg.norm(vec) + 1e-12)
            if info.video_id not in self.info:
                bisect.insort(self._by_time, (info.created_at, info.video_id))
                self.ids.append(info.video_id)
            self.vectors[info.video_id] = vec
            self.info[info.video_id] = info
            records.append(VectorRecord(info.video_id, vec.tolist(), {
                "topic": info.topic or "", "creator_id": info.creator_id, "created_at": info.created_at,
                "duplicate_of": info.duplicate_of or ""}))
        self.store.upsert(records)

    def vector(self, video_id: str) -> np.ndarray | None:
        return self.vectors.get(video_id)

    def search(self, vector: np.ndarray, n: int, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        where = Where(exclude_ids=list(exclude)[-500:]) if exclude else None
        hits = self.store.search(vector, n, where=where, with_payload=False)
        return [(h.id, h.score) for h in hits]

    def fresh(self, n: int, now: float, window_s: float) -> list[str]:
        """The newest videos uploaded within ``window_s`` before ``now`` (none from the future)."""
        end = bisect.bisect_right(self._by_time, (now, "\uffff"))
        out = []
        for created, video in reversed(self._by_time[max(0, end - n):end]):
            if now - created <= window_s:
                out.append(video)
        return out
