"""Session-kNN: users whose recent positives overlap the user's own vote for what else they liked.

V-SKNN (Ludewig and Jannach 2018): the user's last ``SESSION`` positives, the later ones weighing more,
against the ``SAMPLE`` most recently active users that share an item with them; the ``K`` most similar
(weighted overlap over the geometric mean of the set sizes) vote for their recent positives, each with its
similarity. Neighbours come from the user's own partition: the index is derived from that partition's user
states (rebuilt when a partition is installed, updated as events are applied), so it needs no storage of its
own, a restored partition has exactly the index of one clean pass, and every replica ranks a user the same.
Users spread over partitions by a hash of their id, so each partition sees a uniform sample of them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from itertools import repeat

import numpy as np

from services.recommender.core.row_arrays import CODES, summed
from services.recommender.core.user_state import UserState

SESSION = 20  # the user's last positives that define the current session
SAMPLE = 500  # most recently active users sharing an item, scored for similarity
K = 100  # most similar of those that vote


class SessionIndex:
    """item -> the users of one partition with that item among their recent positives."""

    def __init__(self, users: dict[str, UserState]) -> None:
        self.users = users
        self.by_item: dict[str, set[str]] = defaultdict(set)
        self.size: dict[str, int] = {}  # distinct recent positives per user
        for user_id, state in users.items():
            self.update(user_id, (), state.recent_positive)

    def update(self, user_id: str, before: Iterable[str], after: Iterable[str]) -> None:
        """``user_id``'s recent positives went from ``before`` to ``after``."""
        old, new = set(before), set(after)
        for item in old - new:
            holders = self.by_item.get(item)
            if holders is not None:
                holders.discard(user_id)
                if not holders:
                    del self.by_item[item]
        for item in new - old:
            self.by_item[item].add(user_id)
        if new:
            self.size[user_id] = len(new)
        else:
            self.size.pop(user_id, None)

    def _overlap(self, user_id: str, current: list[str]) -> tuple[dict[str, float], int]:
        """Every other user sharing an item with ``current``, with the summed weight of what they share (later
        items weigh more), and the number of distinct items in ``current``."""
        weight = {item: (pos + 1) / len(current) for pos, item in enumerate(current)}
        overlap: dict[str, float] = {}
        for item, w in weight.items():
            get = overlap.get
            for other in self.by_item.get(item, ()):
                overlap[other] = get(other, 0.0) + w
        overlap.pop(user_id, None)
        return overlap, len(weight)

    def neighbours(self, user_id: str, recent: list[str]) -> list[tuple[float, str]]:
        """The ``K`` users most similar to ``recent`` (of the ``SAMPLE`` most recently active sharing an item with
        it), each with its similarity, the most similar first."""
        current = recent[-SESSION:]
        if not current:
            return []
        overlap, distinct = self._overlap(user_id, current)
        return self._nearest(overlap, distinct)

    def _nearest(self, overlap: dict[str, float], distinct: int) -> list[tuple[float, str]]:
        """The ``K`` most similar of the ``SAMPLE`` most recently active (by (last_ts, id), the later first) in
        ``overlap``, as (similarity, id), the most similar first; ranked over arrays, the same floats and the same
        users as ``heapq.nlargest`` over (key, id) tuples would give (a thousand users share an item with a
        matured user's twenty: the tuples cost more than the votes)."""
        users, size = self.users, self.size
        names = list(overlap)
        values = np.fromiter(overlap.values(), float, len(names))
        if len(names) > SAMPLE:  # else all of them (the K most similar do not depend on their order)
            keep = _largest(np.fromiter([users[u].last_ts for u in names], float, len(names)), names, SAMPLE)
            names, values = [names[i] for i in keep], values[keep]
        sizes = np.fromiter([size[u] for u in names], float, len(names))
        scores = values / (math.sqrt(distinct) * np.sqrt(sizes))
        return sorted(((float(scores[i]), names[i]) for i in _largest(scores, names, K)), reverse=True)

    def votes(self, user_id: str, recent: list[str]) -> dict[str, float]:
        """Session-kNN scores of the items the neighbours liked: the summed similarity of those that liked each."""
        codes, sums = self.vote_arrays(user_id, recent)
        return dict(zip(CODES.names(codes), sums.tolist()))

    def vote_arrays(self, user_id: str, recent: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`votes` as arrays (the items' codes in ``row_arrays.CODES``, in the order the dictionary holds
        them, and their sums): the neighbours' items encoded at once and summed by ``row_arrays.summed``, the
        same sums, to the bit, as adding each neighbour's similarity into a dictionary one item after another (a
        learning step reads them so, without the dictionary)."""
        users = self.users
        names: list[str] = []
        weights: list[float] = []
        for sim, other in self.neighbours(user_id, recent):
            items = dict.fromkeys(users[other].recent_positive)
            names.extend(items)
            weights.extend(repeat(sim, len(items)))
        if not names:
            return np.zeros(0, np.int64), np.zeros(0)
        codes, sums, _, _ = summed([(CODES.encode(names), np.array(weights))])
        return codes, sums

    def votes_for(self, user_id: str, recent: list[str], item: str) -> bool:
        """Whether ``item`` is among :meth:`votes` (``item in votes(user_id, recent)``), without counting them:
        only a user holding the item can vote for it, and when no more users share an item with ``recent`` than
        vote, every one of them does."""
        holders = self.by_item.get(item)
        current = recent[-SESSION:]
        if not holders or not current or holders == {user_id}:
            return False
        overlap, distinct = self._overlap(user_id, current)
        if not any(other in overlap for other in holders):
            return False
        if len(overlap) <= K:
            return True
        return any(other in holders for _, other in self._nearest(overlap, distinct))


def _largest(keys: np.ndarray, names: list[str], n: int) -> list[int]:
    """Positions of the ``n`` largest (key, name) pairs, in no order: those above the n-th largest key, then of
    those tied with it the largest names."""
    if len(keys) <= n:
        return list(range(len(keys)))
    kth = np.partition(keys, len(keys) - n)[len(keys) - n]
    above = np.flatnonzero(keys > kth).tolist()
    tied = np.flatnonzero(keys == kth).tolist()
    if len(tied) > n - len(above):
        tied = sorted(tied, key=names.__getitem__, reverse=True)[:n - len(above)]
    return above + tied
