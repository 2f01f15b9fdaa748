"""Baselines for the replay, each as strong as its method allows: popularity, time-decayed
popularity, item-kNN on co-visitation, sequential rules and session-kNN (the strongest simple session
recommenders in Ludewig and Jannach 2018), and river's online biased matrix factorisation."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np


def fit(array: np.ndarray, size: int, fill: float = 0.0) -> np.ndarray:
    """``array`` with room for ``size`` rows: itself when it has them, else a copy at least twice as long (new
    rows ``fill``), so that growing one item at a time costs amortised O(1)."""
    if size <= len(array):
        return array
    grown = np.full((max(size, 2 * len(array), 64), *array.shape[1:]), fill, dtype=array.dtype)
    grown[: len(array)] = array
    return grown


class ScoreBaseline:
    """Keeps an item index; subclasses fill ``scores`` for a user over the catalogue."""

    name = "baseline"

    def __init__(self) -> None:
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    def _idx(self, item: str) -> int:
        if item not in self.index:
            self.index[item] = len(self.items)
            self.items.append(item)
        return self.index[item]

    def scores(self, user: str, now: float) -> np.ndarray:
        raise NotImplementedError

    def update(self, user: str, item: str, weight: float, ts: float) -> None:
        raise NotImplementedError


class PopularityBaseline(ScoreBaseline):
    name = "popularity"

    def __init__(self) -> None:
        super().__init__()
        self.counts = np.zeros(0)

    def update(self, user, item, weight, ts):
        i = self._idx(item)
        self.counts = fit(self.counts, i + 1)
        if weight > 0:
            self.counts[i] += 1

    def scores(self, user, now):
        return self.counts[: len(self.items)]


class DecayedPopularityBaseline(ScoreBaseline):
    name = "decayed_popularity"

    def __init__(self, half_life_s: float = 12 * 3600) -> None:
        super().__init__()
        self.tau = half_life_s / math.log(2)
        self.values = np.zeros(0)
        self.at = np.zeros(0)

    def update(self, user, item, weight, ts):
        i = self._idx(item)
        self.values, self.at = fit(self.values, i + 1), fit(self.at, i + 1, ts)  # an item's clock starts at 0 weight
        if weight > 0:
            self.values[i] = self.values[i] * math.exp(-max(0.0, ts - self.at[i]) / self.tau) + weight
            self.at[i] = max(self.at[i], ts)

    def scores(self, user, now):
        n = len(self.items)
        return self.values[:n] * np.exp(-np.maximum(0.0, now - self.at[:n]) / self.tau)


class ItemKNNBaseline(ScoreBaseline):
    """Item-to-item co-visitation (positives within a user's recent history), damped by popularity."""

    name = "item_knn"

    def __init__(self, history: int = 20, alpha: float = 0.5, decay: float = 0.9) -> None:
        super().__init__()
        self.history: dict[str, list[int]] = defaultdict(list)
        self.co: dict[int, dict[int, float]] = defaultdict(dict)
        self.pop = np.zeros(0)  # positives per item index
        self.window = history
        self.alpha = alpha
        self.decay = decay

    def update(self, user, item, weight, ts):
        i = self._idx(item)
        if weight <= 0:
            return
        self.pop = fit(self.pop, i + 1)
        self.pop[i] += 1
        for j in self.history[user][-self.window:]:
            if j != i:
                self.co[i][j] = self.co[i].get(j, 0.0) + 1
                self.co[j][i] = self.co[j].get(i, 0.0) + 1
        self.history[user].append(i)

    def scores(self, user, now):
        s = np.zeros(len(self.items))
        recent = self.history[user][-self.window:]
        for rank, h in enumerate(reversed(recent)):
            decay = self.decay ** rank  # recent history counts more
            for j, c in self.co[h].items():
                s[j] += decay * c
        pops = fit(self.pop, len(self.items))[: len(self.items)]
        return s / np.maximum(pops, 1.0) ** self.alpha


class SequentialRulesBaseline(ScoreBaseline):
    """Sequential rules (Ludewig and Jannach 2018): when item b follows item a at distance d <= ``steps`` in a
    user's positives, rule a->b gains 1/d; a user's scores are the rules from their last ``weights`` items,
    the most recent first (1, 0.5, 0.25 by default)."""

    name = "sequential_rules"

    def __init__(self, steps: int = 10, weights: tuple[float, ...] = (1.0, 0.5, 0.25)) -> None:
        super().__init__()
        self.steps = steps
        self.weights = weights
        self.history: dict[str, list[int]] = defaultdict(list)
        self.rules: dict[int, dict[int, float]] = defaultdict(dict)

    def update(self, user, item, weight, ts):
        i = self._idx(item)
        if weight <= 0:
            return
        history = self.history[user]
        for d, a in enumerate(reversed(history[-self.steps:]), start=1):
            if a != i:
                self.rules[a][i] = self.rules[a].get(i, 0.0) + 1.0 / d
        history.append(i)

    def scores(self, user, now):
        s = np.zeros(len(self.items))
        for w, a in zip(self.weights, reversed(self.history[user][-len(self.weights):])):
            row = self.rules.get(a)
            if row:
                s[np.fromiter(row.keys(), int, len(row))] += w * np.fromiter(row.values(), float, len(row))
        return s


class SessionKNNBaseline(ScoreBaseline):
    """Session-kNN (V-SKNN in Ludewig and Jannach 2018): the user's last ``session`` positives, weighted
    linearly by recency, against the ``sample`` most recent other histories that share an item with them;
    the ``k`` most similar (cosine on item sets, weighted) vote for their items."""

    name = "session_knn"

    def __init__(self, k: int = 100, sample: int = 500, session: int = 20) -> None:
        super().__init__()
        self.k, self.sample, self.session = k, sample, session
        self.history: dict[str, list[int]] = defaultdict(list)
        self.sets: dict[str, set[int]] = defaultdict(set)
        self.by_item: dict[int, dict[str, float]] = defaultdict(dict)  # item -> user -> last time (recency order)

    def update(self, user, item, weight, ts):
        i = self._idx(item)
        if weight <= 0:
            return
        self.history[user].append(i)
        self.sets[user].add(i)
        self.by_item[i][user] = ts

    def scores(self, user, now):
        s = np.zeros(len(self.items))
        current = self.history[user][-self.session:]
        if not current:
            return s
        weight = {i: (pos + 1) / len(current) for pos, i in enumerate(current)}  # later items weigh more
        candidates: dict[str, float] = {}
        for i in set(current):
            for other, at in self.by_item.get(i, {}).items():
                if other != user and at > candidates.get(other, -math.inf):
                    candidates[other] = at
        recent = sorted(candidates, key=candidates.get, reverse=True)[: self.sample]
        norm = math.sqrt(len(set(current)))
        sims = []
        for other in recent:
            items = self.sets[other]
            overlap = sum(w for i, w in weight.items() if i in items)
            if overlap > 0:
                sims.append((overlap / (norm * math.sqrt(len(items))), other))
        for sim, other in sorted(sims, reverse=True)[: self.k]:
            s[list(self.sets[other])] += sim
        return s


class RiverMFBaseline(ScoreBaseline):
    """river.reco.BiasedMF, learned online one interaction at a time; scores every item with the
    model's own parameters (the same formula as predict_one, vectorised). On implicit logs (every
    weight the same) a model fed only positives learns nothing that ranks, so each positive is
    followed by ``negatives`` items the user has not interacted with, sampled uniformly, learned
    with target 0 (the usual negative sampling for implicit feedback)."""

    name = "river_mf"

    def __init__(self, n_factors: int = 16, seed: int = 0, negatives: int = 4) -> None:
        super().__init__()
        from river import optim, reco

        self.model = reco.BiasedMF(n_factors=n_factors, bias_optimizer=optim.SGD(0.02),
                                   latent_optimizer=optim.SGD(0.05), l2_bias=0.001, l2_latent=0.001, seed=seed)
        self.negatives = negatives
        self.rng = np.random.default_rng(seed)
        self.seen: dict[str, set[int]] = defaultdict(set)
        # each item's bias and latent vector as the model holds them, one row per item index: a step changes only
        # the items it learns on, so scoring every item needs no pass over the model's dictionaries
        self.biases = np.zeros(0)
        self.latents = np.zeros((0, n_factors))

    def update(self, user, item, weight, ts):
        i = self._idx(item)
        self.seen[user].add(i)
        self._learn(user, i, weight)
        if weight > 0 and len(self.items) > 1:
            for j in self.rng.integers(0, len(self.items), self.negatives):
                if int(j) not in self.seen[user]:
                    self._learn(user, int(j), 0.0)

    def _learn(self, user: str, i: int, target: float) -> None:
        m, item = self.model, self.items[i]
        m.learn_one(user, item, target)
        self.biases, self.latents = fit(self.biases, i + 1), fit(self.latents, i + 1)
        self.biases[i] = m.i_biases.get(item, 0.0)
        self.latents[i] = np.asarray(m.i_latents[item], float) if item in m.i_latents else 0.0

    def scores(self, user, now):
        m = self.model
        n = len(self.items)
        ib = fit(self.biases, n)[:n]
        if user not in m.u_latents:
            return m.global_mean.get() + ib
        if not n:
            return np.zeros(0)
        u = np.asarray(m.u_latents[user], float)
        return m.global_mean.get() + m.u_biases.get(user, 0.0) + ib + fit(self.latents, n)[:n] @ u


BASELINES = (PopularityBaseline, DecayedPopularityBaseline, ItemKNNBaseline, SequentialRulesBaseline,
             SessionKNNBaseline, RiverMFBaseline)
