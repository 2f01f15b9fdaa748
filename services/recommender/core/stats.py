"""Stream statistics: time-decayed popularity and item-to-item co-visitation."""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import repeat

import numpy as np

from services.recommender.core.row_arrays import CODES, RowArrays

_NONE = (0.0, 0.0)
Dirty = defaultdict[str, set[str]]
"""The pairs of each row changed since the last flush (``engine.PartitionState``)."""
_MAX_EXPONENT = 700.0  # math.exp overflows past about 709.78


def _exp(x: float) -> float:
    """math.exp that saturates instead of raising OverflowError, whatever times it is given."""
    return math.exp(min(x, _MAX_EXPONENT))


def top_order(values: np.ndarray, k: int, ties: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k largest ``values``, largest first, ties by ``ties`` (default: the index), as a full
    stable sort would give them; only those at or above the k-th largest are sorted."""
    m = len(values)
    cand = np.flatnonzero(values >= np.partition(values, m - k)[m - k]) if 0 < k < m else np.arange(m)
    keys = cand if ties is None else ties[cand]
    return cand[np.lexsort((keys, -values[cand]))][:k]


class Popularity:
    """score(v) = sum of positive weights, each decayed by exp(-age / tau); lazily decayed per item.
    ``hot`` keeps the same sum at a short half-life (what is popular today), on the same clock as the score:
    trends on a short-video platform come and go within a day, and the scorer learns how much that says
    where a month's trend says little. ``totals`` keeps the undecayed sum (all-time popularity)."""

    def __init__(self, half_life_s: float, hot_half_life_s: float = 86400.0) -> None:
        self.tau = half_life_s / math.log(2)
        self.hot_tau = hot_half_life_s / math.log(2)
        self.scores: dict[str, tuple[float, float]] = {}  # video -> (score, at time)
        self.hot: dict[str, float] = {}  # video -> its hot score at the same time
        self.totals: dict[str, float] = {}
        self._changed: set[str] = set()  # videos whose total changed since :meth:`totals_by_code` last read
        self._by_code = np.zeros(0)  # all-time totals by code (``row_arrays.CODES``), as of the last read
        self.peak_total = 0.0  # the largest all-time total (totals only grow)
        # every score decays at the same rate, so the top score's video is the same at any time: the
        # largest log(score) + at / tau, which only grows, names it (top_score() at any time, O(1))
        self._peak_key = -math.inf
        self._hot_peak_key = -math.inf
        self.now = 0.0
        self._top: dict[bool, tuple[float, int, list[tuple[str, float]]]] = {}  # hot -> (at, n, ranking) cache
        self.cache_s = 1.0

    def add(self, video: str, weight: float, ts: float, total: float | None = None, hot: float | None = None) -> None:
        """A positive event of ``weight`` at ``ts``; a merge gives the entry's ``total`` and ``hot`` score too."""
        self.now = max(self.now, ts)
        self.totals[video] = self.totals.get(video, 0.0) + (weight if total is None else total)
        self._changed.add(video)
        self.peak_total = max(self.peak_total, self.totals[video])
        h = weight if hot is None else hot
        score, at = self.scores.get(video, (0.0, ts))
        warm = self.hot.get(video, 0.0)
        if ts >= at:
            self.scores[video] = (score * _exp(-(ts - at) / self.tau) + weight, ts)
            self.hot[video] = warm * _exp(-(ts - at) / self.hot_tau) + h
        else:  # an event older than the item's clock: decay the event instead
            self.scores[video] = (score + weight * _exp(-(at - ts) / self.tau), at)
            self.hot[video] = warm + h * _exp(-(at - ts) / self.hot_tau)
        self._raise_peak(*self.scores[video], self.hot[video])

    def _raise_peak(self, score: float, at: float, hot: float) -> None:
        if score > 0:
            self._peak_key = max(self._peak_key, math.log(score) + at / self.tau)
        if hot > 0:
            self._hot_peak_key = max(self._hot_peak_key, math.log(hot) + at / self.hot_tau)

    def top_score(self, now: float | None = None, hot: bool = False) -> float:
        """The largest decayed score (``hot``: hot score) at ``now`` (0 while nothing is popular)."""
        key, tau = (self._hot_peak_key, self.hot_tau) if hot else (self._peak_key, self.tau)
        if key == -math.inf:
            return 0.0
        return _exp(key - (now or self.now) / tau)

    def load(self, video: str, score: float, at: float, total: float, hot: float = 0.0) -> None:
        """One stored row back, exactly as it was written (a row from a build without hot scores: 0)."""
        self.scores[video] = (score, at)
        self.hot[video] = hot
        self.totals[video] = total
        self._changed.add(video)
        self.peak_total = max(self.peak_total, total)
        self.now = max(self.now, at)
        self._raise_peak(score, at, hot)

    def row(self, video: str) -> tuple[float, float, float, float]:
        """(score, at, total, hot): what a stored row and a changelog row hold for ``video``."""
        score, at = self.scores[video]
        return score, at, self.totals.get(video, 0.0), self.hot.get(video, 0.0)

    def replace(self, video: str, entries: list[tuple[float, float, float, float]]) -> None:
        """``video``'s entry becomes the merge of ``entries`` ((score, at, total, hot) each, in the order given):
        what :meth:`add` of each entry in turn gives, the same floating-point steps, with no call or dict
        access per entry (every replica re-merges each touched video of every flush it reads)."""
        self.scores.pop(video, None)  # re-added at the end, as add() after a pop did (ties in top() keep that order)
        self.hot.pop(video, None)
        self.totals.pop(video, None)
        self._changed.add(video)
        if not entries:
            self._top.clear()
            return
        tau, hot_tau, log, exp = self.tau, self.hot_tau, math.log, math.exp  # exp of ages <= 0: never overflows
        peak, hot_peak, peak_total, now = self._peak_key, self._hot_peak_key, self.peak_total, self.now
        score = warm = total = 0.0
        at = entries[0][1]
        for e_score, e_at, e_total, e_hot in entries:
            now = max(now, e_at)
            total += e_total
            peak_total = max(peak_total, total)
            if e_at >= at:
                score = score * exp(-(e_at - at) / tau) + e_score
                warm = warm * exp(-(e_at - at) / hot_tau) + e_hot
                at = e_at
            else:
                score = score + e_score * exp(-(at - e_at) / tau)
                warm = warm + e_hot * exp(-(at - e_at) / hot_tau)
            if score > 0:
                peak = max(peak, log(score) + at / tau)
            if warm > 0:
                hot_peak = max(hot_peak, log(warm) + at / hot_tau)
        self.totals[video] = total
        self.scores[video] = (score, at)
        self.hot[video] = warm
        self._peak_key, self._hot_peak_key, self.peak_total, self.now = peak, hot_peak, peak_total, now
        self._top.clear()

    def score(self, video: str, now: float | None = None) -> float:
        if video not in self.scores:
            return 0.0
        score, at = self.scores[video]
        return score * _exp(-max(0.0, (now or self.now) - at) / self.tau)

    def scores_at(self, videos: list[str], now: float | None = None, hot: bool = False) -> np.ndarray:
        """score() for many videos at once (0 for unknown ones); ``hot``: their hot scores."""
        return self.both_at(videos, now)[1 if hot else 0]

    def both_at(self, videos: list[str], now: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`scores_at` of ``videos``, and their hot scores, from one read of the rows."""
        rows = np.array([self.scores.get(v, _NONE) for v in videos], float).reshape(-1, 2)
        age = np.maximum(0.0, (now or self.now) - rows[:, 1])
        warm = np.fromiter(map(self.hot.get, videos, repeat(0.0)), float, len(videos))
        return rows[:, 0] * np.exp(-age / self.tau), warm * np.exp(-age / self.hot_tau)

    def totals_of(self, videos: list[str]) -> np.ndarray:
        return np.fromiter(map(self.totals.get, videos, repeat(0.0)), float, len(videos))

    def totals_by_code(self, codes: np.ndarray) -> np.ndarray:
        """:meth:`totals_of` the videos of ``codes`` (``row_arrays.CODES``): one array read, where looking up
        two thousand ids in ``totals`` (each id's string read to compare) is most of a learning step's votes."""
        changed = list(self._changed)
        at = CODES.encode(changed)  # may hand out codes
        self._changed.clear()
        if len(self._by_code) < len(CODES.of):
            grown = np.zeros(max(len(CODES.of), 2 * len(self._by_code)))
            grown[:len(self._by_code)] = self._by_code
            self._by_code = grown
        self._by_code[at] = list(map(self.totals.get, changed, repeat(0.0)))
        return self._by_code[codes]

    def top(self, n: int, now: float | None = None, hot: bool = False) -> list[tuple[str, float]]:
        """The n most popular videos (``hot``: by hot score); recomputed at most once a second of stream time
        (trending may lag the stream by up to a second; a feed is not held up by sorting every video each time)."""
        now = now or self.now
        cached = self._top.get(hot)
        if cached is not None and cached[1] >= n and abs(now - cached[0]) < self.cache_s:
            return cached[2][:n]
        ranked = self._ranked(n, now, hot)
        self._top[hot] = (now, n, ranked)
        return ranked

    def _ranked(self, n: int, now: float, hot: bool = False) -> list[tuple[str, float]]:
        """The n largest score(v, now) (``hot``: hot scores), as heapq.nlargest over ``scores`` would give them
        (ties in insertion order), with the scores decayed in one numpy pass and only those at or above the n-th
        largest sorted: a tenth of the time at 2,000 videos, and a catalogue of 100k no longer costs seconds."""
        m = len(self.scores)
        if n <= 0 or not m:
            return []
        ids = list(self.scores)
        rows = np.array(list(self.scores.values()), float)
        base = np.fromiter(map(self.hot.get, ids, repeat(0.0)), float, m) if hot else rows[:, 0]
        values = base * np.exp(-np.maximum(0.0, now - rows[:, 1]) / (self.hot_tau if hot else self.tau))
        return [(ids[i], float(values[i])) for i in top_order(values, n)]

    def merge(self, other: Popularity) -> None:
        for video, (score, at) in other.scores.items():
            self.add(video, score, at, other.totals.get(video, 0.0), other.hot.get(video, 0.0))


class CoVisitation:
    """Symmetric counts of items liked close together by the same user; neighbours capped per item."""

    def __init__(self, max_neighbours: int = 100) -> None:
        self.max_neighbours = max_neighbours
        self.counts: dict[str, dict[str, float]] = defaultdict(dict)
        self.arrays = RowArrays()  # rows read as arrays for votes, until they change

    def row_arrays(self, item: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Row ``item`` as (codes, weights) arrays (``row_arrays.py``), None when it is empty."""
        row = self.counts.get(item)
        return self.arrays.get(item, row) if row else None

    def add(self, item: str, previous: tuple[str, ...] | list[str], weight: float = 1.0,
            dirty: Dirty | None = None) -> list[tuple[str, str, float]]:
        """Returns every pair (a, b, weight now) that changed, a pair a trimmed row dropped with weight 0; with
        ``dirty``, each changed pair is added to ``dirty[a]`` instead (and nothing is returned).

        For each other item: row ``item`` gains ``weight`` for it, then its row gains as much for ``item``; a
        row past twice the cap keeps its strongest ``max_neighbours`` at once. Inlined (no call per pair):
        this runs for every positive event, twice the co-visit window of dict updates."""
        changed: list[tuple[str, str, float]] = []
        counts, cap = self.counts, self.max_neighbours * 2
        forget = self.arrays.kept.pop  # rows read as arrays are read again once changed
        row = counts[item]
        forget(item, None)
        mine: set[str] | None = None  # dirty[item], looked up at the first pair (no entry for an event without any)
        for other in previous:
            if other == item:
                continue
            value = row[other] = row.get(other, 0.0) + weight
            if dirty is None:
                changed.append((item, other, value))
            else:
                if mine is None:
                    mine = dirty[item]
                mine.add(other)
            if len(row) > cap:
                row = self._trim(item, row, changed, mine)
            back = counts[other]
            value = back[item] = back.get(item, 0.0) + weight
            forget(other, None)
            theirs = dirty[other] if dirty is not None else None
            if theirs is None:
                changed.append((other, item, value))
            else:
                theirs.add(item)
            if len(back) > cap:
                self._trim(other, back, changed, theirs)
        return changed

    def _trim(self, a: str, row: dict[str, float], changed: list[tuple[str, str, float]],
              dirty: set[str] | None) -> dict[str, float]:
        """Row ``a`` keeps its strongest ``max_neighbours``, the strongest first (ties in their order); the pairs
        it drops go to ``dirty`` (a's changed pairs), else to ``changed`` with weight 0. Returns the row kept."""
        order = sorted(row, key=row.__getitem__, reverse=True)  # reverse=True keeps ties in their order
        keep = self.max_neighbours
        kept = self.counts[a] = {b: row[b] for b in order[:keep]}
        self.arrays.forget(a)
        if dirty is None:
            changed.extend((a, dropped, 0.0) for dropped in order[keep:])
        else:
            dirty.update(order[keep:])
        return kept

    def merge(self, other: CoVisitation) -> None:
        """Add ``other``'s weights (another partition's) to these, pair by pair; rows are not trimmed here."""
        for a, row in other.counts.items():
            self.arrays.forget(a)
            mine = self.counts[a]
            for b, w in row.items():
                mine[b] = mine.get(b, 0.0) + w

    def neighbours(self, item: str, n: int) -> list[tuple[str, float]]:
        return sorted(self.counts.get(item, {}).items(), key=lambda kv: -kv[1])[:n]


class Transitions(CoVisitation):
    """What users watch next: directed rules ``counts[a][b]``, which gain ``weight / d`` each time ``b`` is
    liked ``d`` positives after ``a`` (d <= ``steps``) in one user's history; sequential rules (Ludewig and
    Jannach 2018, the strongest simple session recommender in their comparison). Rows are capped like
    co-visitation's and stored, merged and restored the same way. Weights are kept in units of
    1 / lcm(1..steps) (2520 for 10 steps), so every weight is a whole number and sums are exact in any
    order, as co-visitation counts are; only ratios of weights are ever read."""

    def __init__(self, max_neighbours: int = 100, steps: int = 10) -> None:
        super().__init__(max_neighbours)
        self.steps = steps
        self.unit = math.lcm(*range(1, steps + 1))
        self._gains: dict[float, list[float]] = {}  # weight -> what it adds at each distance

    def add(self, item: str, previous: tuple[str, ...] | list[str], weight: float = 1.0,
            dirty: Dirty | None = None) -> list[tuple[str, str, float]]:
        """``previous``: the user's positives before ``item``, oldest first."""
        changed: list[tuple[str, str, float]] = []
        counts, cap = self.counts, self.max_neighbours * 2
        gains = self._gains.get(weight)
        if gains is None:  # weight * unit // distance for each distance, once per weight (a few hundred kept)
            if len(self._gains) >= 256:
                self._gains.clear()
            gains = self._gains[weight] = [weight * self.unit // d for d in range(1, self.steps + 1)]
        forget = self.arrays.kept.pop
        for gain, other in zip(gains, reversed(previous[-self.steps:])):
            if other == item:
                continue
            row = counts[other]
            value = row[item] = row.get(item, 0.0) + gain
            forget(other, None)
            theirs = dirty[other] if dirty is not None else None
            if theirs is None:
                changed.append((other, item, value))
            else:
                theirs.add(item)
            if len(row) > cap:
                self._trim(other, row, changed, theirs)
        return changed


class TrendCounts(CoVisitation):
    """How many engaged views each topic and concept had, in buckets of ``BUCKET_S`` of event time:
    ``counts[key][str(bucket)]``, ``key`` ``topic:<name>`` or ``concept:<name>``. Whole numbers, stored, merged
    across partitions and restored as co-visitation rows are (a row per key, a pair per bucket); buckets older
    than ``keep`` are dropped when a key opens a new one (a pair with count 0 in the changes)."""

    BUCKET_S = 600

    def __init__(self, keep: int = 2 * 144 + 1) -> None:
        super().__init__(max_neighbours=keep)
        self.keep = keep

    def add(self, keys: list[str], ts: float,  # type: ignore[override]
            dirty: Dirty | None = None) -> list[tuple[str, str, float]]:
        """The changed pairs as :meth:`CoVisitation.add` gives them (with ``dirty``: into it instead)."""
        bucket = int(ts // self.BUCKET_S)
        name = str(bucket)
        changed: list[tuple[str, str, float]] = []
        for key in keys:
            row = self.counts[key]
            if name not in row:  # a new bucket: the row's expired ones go (once per bucket, not per event)
                expired = [b for b in row if int(b) <= bucket - self.keep]
                for old in expired:
                    del row[old]
                if dirty is None:
                    changed.extend((key, old, 0.0) for old in expired)
                else:
                    dirty[key].update(expired)
            value = row[name] = row.get(name, 0.0) + 1.0
            if dirty is None:
                changed.append((key, name, value))
            else:
                dirty[key].add(name)
        return changed


class FirstViews(CoVisitation):
    """Each video's engaged views in its first ``WINDOW_S`` after publication (its ``created_at``):
    ``counts[video] = {"views": n}``, whole numbers, stored, merged across partitions and restored as
    co-visitation rows are (a row per video). What similar videos did on their first day is what the reach
    forecast calibrates a new video's first-day views by (``reach.first_day_views``)."""

    WINDOW_S = 86400.0
    COLUMN = "views"

    def __init__(self) -> None:
        super().__init__(max_neighbours=1)

    def add(self, video: str, ts: float, created_at: float,  # type: ignore[override]
            dirty: Dirty | None = None) -> None:
        """One engaged view of ``video`` at ``ts``: counted when it falls in the video's first day."""
        if 0.0 <= ts - created_at < self.WINDOW_S:
            row = self.counts[video]
            row[self.COLUMN] = row.get(self.COLUMN, 0.0) + 1.0
            if dirty is not None:
                dirty[video].add(self.COLUMN)

    def views(self, video: str) -> float:
        return self.counts.get(video, {}).get(self.COLUMN, 0.0)
