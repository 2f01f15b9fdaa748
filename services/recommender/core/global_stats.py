"""Statistics every replica ranks with: popularity, co-visitation and the ranker's weights of all partitions.

Each partition's statistics arrive as rows (its flushes, read from the changelog by every replica) and are
merged here in partition order, so replicas that own different partitions (or one replica that owns all)
hold the same view once they have read the same flushes. Popularity, co-visitation and transitions are
re-merged per touched video, summed in partition order: the same floats whatever order flushes came in.
"""

from __future__ import annotations

import numpy as np

from services.recommender.core.ranker import Ranker, blend
from services.recommender.core.stats import CoVisitation, Popularity, Transitions
from services.recommender.rows import CovisitRow, Rows


class MergedRows:
    """Neighbour rows (co-visitation or transitions) of every partition, and their sum in ``into``."""

    def __init__(self, into: CoVisitation) -> None:
        self.into = into
        self.rows: dict[int, dict[str, dict[str, float]]] = {}

    def apply(self, partition: int, rows: list[CovisitRow], full: bool) -> None:
        mine = self.rows.setdefault(partition, {})
        touched = {video for video, _ in rows}
        if full:
            touched |= set(mine)
            mine.clear()
        for video, row in rows:
            if row:
                mine[video] = dict(row)
            else:
                mine.pop(video, None)
        for video in touched:
            merged: dict[str, float] = {}
            for p in sorted(self.rows):
                for other, w in self.rows[p].get(video, {}).items():
                    merged[other] = merged.get(other, 0.0) + w
            if merged:
                self.into.counts[video] = merged
            else:
                self.into.counts.pop(video, None)


class GlobalStats:
    def __init__(self, half_life_s: float, prior: np.ndarray) -> None:
        self.popularity = Popularity(half_life_s)
        self.covisit = CoVisitation()
        self.transitions = Transitions()
        self.prior = prior
        self.pops: dict[int, dict[str, tuple[float, float, float]]] = {}
        self._covisit = MergedRows(self.covisit)
        self._transitions = MergedRows(self.transitions)
        self.rankers: dict[int, Ranker] = {}
        self._weights: np.ndarray | None = None

    def apply(self, partition: int, rows: Rows, full: bool = False) -> None:
        """One flush of ``partition``: a delta, or (``full``) its whole state, replacing what was known of it."""
        pops = self.pops.setdefault(partition, {})
        touched = {v for v, *_ in rows.popularity}
        if full:
            touched |= set(pops)
            pops.clear()
            if self.rankers.pop(partition, None) is not None and rows.ranker is None:
                self._weights = None
        pops.update((v, (score, at, total)) for v, score, at, total in rows.popularity)
        self._covisit.apply(partition, rows.covisit, full)
        self._transitions.apply(partition, rows.transitions, full)
        if rows.ranker is not None:
            ranker = Ranker.from_bytes(*rows.ranker)
            if len(ranker.weights) == len(self.prior):  # a build with other features: its weights do not apply
                self.rankers[partition] = ranker
                self._weights = None
        for video in touched:
            self._merge_video(video)

    def _merge_video(self, video: str) -> None:
        entries = [self.pops[p][video] for p in sorted(self.pops) if video in self.pops[p]]
        self.popularity.replace(video, entries)

    def weights(self) -> np.ndarray:
        if self._weights is None:
            self._weights = blend((self.rankers[p] for p in sorted(self.rankers)), self.prior)
        return self._weights
