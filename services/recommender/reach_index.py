"""The users' long-term vectors in a Qdrant collection of their own, each with its bar (``core/reach.py``),
so a video's reach is one filtered search with a score threshold instead of a loop over users.

Users whose state changed are marked as events are applied (:meth:`ReachIndex.mark`, a set insert on the hot
path); :meth:`ReachIndex.refresh` runs off it in bounded chunks: per user one catalogue search for the bar,
then one upsert per chunk. Each point carries the user's partition, so a replica counts only the
partitions it serves (the gateway sums the replicas), whichever replica wrote the point last.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from services.recommender.core.reach import NO_BAR, SLACK, ReachCount, favourite_topic, kth_similarity, tally
from services.recommender.core.user_state import UserState
from shared.vectors import VectorRecord, VectorStore, Where


EXACT_MAX = 200_000  # audiences up to this size are counted by a scan
BAR_EF_FACTOR = 4  # a bar's search looks 4k wide: an HNSW search k wide misses neighbours, which lowers the bar


class ReachIndex:
    def __init__(self, store: VectorStore, top_k: int) -> None:
        self.store = store
        self.store.index_fields({"partition": "integer", "last_active": "float"})  # every count filters on both
        self.top_k = top_k
        self.bars: dict[str, float] = {}  # user -> bar, for the users this replica wrote
        self.pending: set[str] = set()  # users whose point is out of date
        self.lowest = NO_BAR  # the lowest bar: the reach search's score threshold

    def mark(self, user_ids: Iterable[str]) -> None:
        self.pending.update(user_ids)

    def refresh(self, rec, limit: int) -> int:
        """Bring up to ``limit`` pending users' points up to date (``rec``: the Recommender); returns how many."""
        batch = [self.pending.pop() for _ in range(min(limit, len(self.pending)))]
        upserts, gone = [], []
        infos = rec.catalogue.info
        for user_id in batch:
            partition = rec.user_partition.get(user_id)
            user: UserState | None = rec.partitions[partition].users.get(user_id) if partition is not None else None
            if user is None or user.long is None or not np.all(np.isfinite(user.long)) or not user.long.any():
                gone.append(user_id)
                continue
            hits = rec.catalogue.search(user.long, self.top_k, ef=BAR_EF_FACTOR * self.top_k)
            bar = kth_similarity([s for _, s in hits], self.top_k)
            self.bars[user_id] = bar
            upserts.append(VectorRecord(user_id, user.long.tolist(), {
                "bar": bar, "partition": partition, "last_active": user.last_ts, "hours": list(user.hours),
                "topic": favourite_topic(user.recent_positive, {v: infos[v].topic for v in user.recent_positive
                                                                if v in infos}) or ""}))
        if gone:
            for user_id in gone:
                self.bars.pop(user_id, None)
            self.store.delete(gone)
        self.store.upsert(upserts)
        self.lowest = min(self.bars.values(), default=NO_BAR)
        return len(batch)

    def count(self, video: np.ndarray, partitions: Iterable[int], active_since: float,
              exact: bool | None = None) -> ReachCount:
        """Users of ``partitions`` active since ``active_since`` whom ``video`` reaches: one search with the
        lowest bar as its threshold, then each hit against its own bar. ``exact`` (default: up to
        :data:`EXACT_MAX` active users) scans instead of walking the HNSW graph: a search whose limit is the
        whole audience visits most of the graph anyway, and a scan is exact."""
        where = Where(match={"partition": sorted(partitions)}, ranges={"last_active": (active_since, None)})
        active = self.store.count(where) if where.match["partition"] else 0
        if not active or not self.bars:
            return ReachCount(active_users=active)
        lowest = self.lowest
        exact = active <= EXACT_MAX if exact is None else exact
        hits = self.store.search(video, active, where=where, exact=exact, with_payload=False,
                                 min_score=None if lowest <= -1 else lowest - 1e-4)
        # ids and scores first (most hits clear the lowest bar, not their own); payloads of the reached only
        bars = self.bars
        reached = {h.id: h.score for h in hits if h.score + SLACK >= bars.get(h.id, math.inf)}
        found = self.store.get(list(reached)) if reached else []
        return tally(((reached[r.id], r.payload) for r in found), active)


def active_since(now: float, days: float) -> float:
    return now - days * 86400.0 if math.isfinite(days) else -math.inf
