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

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from services.recommender.core.row_arrays import CODES
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
        self._codes: dict[str, np.ndarray] = {}  # a user's distinct recent positives as codes, once it has voted
        for user_id, state in users.items():
            self.update(user_id, (), state.recent_positive)

    def update(self, user_id: str, before: Iterable[str], after: Iterable[str]) -> None:
        """``user_id``'s recent positives went from ``before`` to ``after``."""
        old, new = set(before), set(after)
        self._codes.pop(user_id, None)  # read again at its next vote
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
        users, size = self.users, self.size
        # all of them when there are no more than SAMPLE (the K most similar do not depend on their order)
        sampled = heapq.nlargest(SAMPLE, overlap, key=lambda u: (users[u].last_ts, u)) if len(overlap) > SAMPLE \
            else overlap
        norm = math.sqrt(distinct)
        scored = [(overlap[u] / (norm * math.sqrt(size[u])), u) for u in sampled]
        return heapq.nlargest(K, scored)

    def votes(self, user_id: str, recent: list[str]) -> dict[str, float]:
        """Session-kNN scores of the items the neighbours liked: the summed similarity of those that liked each,
        in the order the items are first met (the most similar neighbour's first, each in its own order).

        Summed over arrays (a hundred neighbours of twenty items each, once per feed and learning step):
        ``np.bincount`` adds each item's similarities one after another from 0, in the neighbours' order, as a
        loop of dictionary updates would, so the votes are the same to the bit."""
        near = self.neighbours(user_id, recent)
        if not near:
            return {}
        arrays = [self._codes_of(other) for _, other in near]
        codes = np.concatenate(arrays)
        weights = np.repeat(np.array([sim for sim, _ in near]), [len(a) for a in arrays])
        items, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        sums = np.bincount(inverse, weights, len(items))
        order = np.argsort(first)
        return dict(zip(CODES.names(items[order]), sums[order].tolist()))

    def _codes_of(self, user_id: str) -> np.ndarray:
        codes = self._codes.get(user_id)
        if codes is None:
            codes = self._codes[user_id] = CODES.encode(dict.fromkeys(self.users[user_id].recent_positive))
        return codes

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
