"""The recommender's view of the videos: vectors and the payload fields feeds filter on.

Built from ``videos.embedded``; retrieval goes through the VectorStore (Qdrant), scoring and
diversity use the vectors kept here.
"""

from __future__ import annotations

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

    def __contains__(self, video_id: str) -> bool:
        return video_id in self.vectors

    def __len__(self) -> int:
        return len(self.vectors)

    def add(self, info: VideoInfo, vector: Sequence[float]) -> None:
        vec = np.asarray(vector, np.float32)
        vec = vec / (np.linalg.norm(vec) + 1e-12)
        self.vectors[info.video_id] = vec
        self.info[info.video_id] = info
        self.store.upsert([VectorRecord(info.video_id, vec.tolist(), {
            "topic": info.topic or "", "creator_id": info.creator_id, "created_at": info.created_at,
            "duplicate_of": info.duplicate_of or ""})])

    def vector(self, video_id: str) -> np.ndarray | None:
        return self.vectors.get(video_id)

    def search(self, vector: np.ndarray, n: int, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        hits = self.store.search(vector, n, where=Where(exclude_ids=list(exclude)[-500:]) if exclude else None)
        return [(h.id, h.score) for h in hits]

    def fresh(self, n: int, now: float, window_s: float) -> list[str]:
        young = [(v.created_at, k) for k, v in self.info.items() if now - v.created_at <= window_s]
        return [k for _, k in sorted(young, reverse=True)[:n]]
