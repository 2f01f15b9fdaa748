"""Statistics every replica ranks with: popularity, co-visitation and the ranker's weights of all partitions.

Each partition's statistics arrive as rows (its flushes, read from the changelog by every replica) and are
merged here in partition order, so replicas that own different partitions (or one replica that owns all)
hold the same view once they have read the same flushes. Popularity is re-merged per touched video;
co-visitation and transitions weights are sums of whole numbers (``stats.py``), so their rows are updated
by difference, exactly, whatever order the flushes of different partitions came in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain

import numpy as np

from services.recommender.core.ranker import Ranker, blend
from services.recommender.core.stats import CoVisitation, FirstViews, Popularity, Transitions, TrendCounts
from services.recommender.rows import CovisitRow, Rows

STEP = 256  # rows merged between two pauses of :meth:`GlobalStats.steps` (a few milliseconds)


class MergedRows:
    """Neighbour rows (co-visitation or transitions) of every partition, and their sum in ``into``."""

    def __init__(self, into: CoVisitation) -> None:
        self.into = into
        self.rows: dict[int, dict[str, dict[str, float]]] = {}

    def apply(self, partition: int, rows: list[CovisitRow], full: bool) -> None:
        """One flush of ``partition``: whole rows (``full``: what is not in them is gone) or patches."""
        for _ in self.steps(partition, rows, full):
            pass

    def steps(self, partition: int, rows: list[CovisitRow], full: bool) -> Iterator[None]:
        """:meth:`apply`, pausing after every ``STEP`` rows (the rows patched so far are merged)."""
        mine = self.rows.setdefault(partition, {})
        patches: Iterable[CovisitRow] = rows
        if full:  # rows no longer listed are emptied; a listed row's pairs not in it are gone (patches made lazily)
            listed = dict(rows)
            gone = [v for v in mine if v not in listed]
            patches = chain(((video, dict.fromkeys(mine[video], 0.0)) for video in gone),
                            ((video, {**dict.fromkeys(mine.get(video, ()), 0.0), **row}) for video, row in rows))
        for i, (video, patch) in enumerate(patches, 1):
            self._patch(mine, video, patch)
            if i % STEP == 0:
                yield

    def _patch(self, mine: dict[str, dict[str, float]], video: str, patch: dict[str, float]) -> None:
        """Pairs of ``video``'s row of one partition set (weight 0: removed); the sum moves by the difference."""
        row = mine.setdefault(video, {})
        merged = self.into.counts[video]
        self.into.arrays.forget(video)
        get, was = merged.get, row.get
        for other, w in patch.items():  # patch_row(row, patch) in the same pass
            old = was(other, 0.0)
            if w == old:  # rows hold no zeros: a zero already absent, or the same weight
                continue
            left = get(other, 0.0) + (w - old)
            if left > 0:
                merged[other] = left
            else:
                merged.pop(other, None)
            if w:
                row[other] = w
            else:
                del row[other]  # old != 0: it is there
        if not row:
            del mine[video]
        if not merged:
            del self.into.counts[video]


class GlobalStats:
    def __init__(self, half_life_s: float, prior: np.ndarray, hot_half_life_s: float = 86400.0) -> None:
        self.popularity = Popularity(half_life_s, hot_half_life_s)
        self.covisit = CoVisitation()
        self.transitions = Transitions()
        self.prior = prior
        self.pops: dict[int, dict[str, tuple[float, float, float, float]]] = {}
        self._covisit = MergedRows(self.covisit)
        self._transitions = MergedRows(self.transitions)
        self.trends = TrendCounts()
        self._trends = MergedRows(self.trends)
        self.first_views = FirstViews()
        self._first_views = MergedRows(self.first_views)
        self.rankers: dict[int, Ranker] = {}
        self._weights: np.ndarray | None = None

    def apply(self, partition: int, rows: Rows, full: bool = False) -> None:
        """One flush of ``partition``: a delta, or (``full``) its whole state, replacing what was known of it."""
        for _ in self.steps(partition, rows, full):
            pass

    def steps(self, partition: int, rows: Rows, full: bool = False) -> Iterator[None]:
        """:meth:`apply` in steps of about ``STEP`` rows, so a reader on the event loop can let other work run
        between them (a flush of a busy partition takes tens of milliseconds to merge). Between two steps
        the flush is partly merged: a feed ranks with some of its rows and not yet the others."""
        pops = self.pops.setdefault(partition, {})
        touched = {v for v, *_ in rows.popularity}
        if full:
            touched |= set(pops)
            pops.clear()
            if self.rankers.pop(partition, None) is not None:  # replaced below, or gone (none, or the wrong size)
                self._weights = None
        pops.update((v, tuple(entry)) for v, *entry in rows.popularity)
        for table, table_rows in ((self._covisit, rows.covisit), (self._transitions, rows.transitions),
                                  (self._trends, rows.trends), (self._first_views, rows.first_views)):
            yield from table.steps(partition, table_rows, full)
        if rows.ranker is not None:  # after the rows, as before steps: new weights never rank older rows
            ranker = Ranker.from_bytes(*rows.ranker)
            if len(ranker.weights) == len(self.prior):  # a build with other features: its weights do not apply
                self.rankers[partition] = ranker
                self._weights = None
        tables = [self.pops[p] for p in sorted(self.pops)]  # each video's entries in partition order
        replace = self.popularity.replace
        for i, video in enumerate(touched, 1):
            replace(video, [table[video] for table in tables if video in table])
            if i % STEP == 0:
                yield

    def weights(self) -> np.ndarray:
        if self._weights is None:
            self._weights = blend((self.rankers[p] for p in sorted(self.rankers)), self.prior)
        return self._weights
