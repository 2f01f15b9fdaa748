"""Baselines for the replay, each as strong as its method allows: popularity, time-decayed
popularity, item-kNN on co-visitation, and river's online biased matrix factorisation."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np


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
        if i >= len(self.counts):
            self.counts = np.concatenate([self.counts, np.zeros(max(64, i + 1 - len(self.counts)))])
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
        if i >= len(self.values):
            grow = max(64, i + 1 - len(self.values))
            self.values = np.concatenate([self.values, np.zeros(grow)])
            self.at = np.concatenate([self.at, np.full(grow, ts)])
        if weight > 0:
            self.values[i] = self.values[i] * math.exp(-max(0.0, ts - self.at[i]) / self.tau) + weight
            self.at[i] = max(self.at[i], ts)

    def scores(self, user, now):
        n = len(self.items)
        return self.values[:n] * np.exp(-np.maximum(0.0, now - self.at[:n]) / self.tau)


class ItemKNNBaseline(ScoreBaseline):
    """Item-to-item co-visitation (positives within a user's recent history), damped by popularity."""

    name = "item_knn"

    def __init__(self, history: int = 20, alpha: float = 0.5) -> None:
        super().__init__()
        self.history: dict[str, list[int]] = defaultdict(list)
        self.co: dict[int, dict[int, float]] = defaultdict(dict)
        self.pop: dict[int, float] = defaultdict(float)
        self.window = history
        self.alpha = alpha

    def update(self, user, item, weight, ts):
        i = self._idx(item)
        if weight <= 0:
            return
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
            decay = 0.9 ** rank  # recent history counts more
            for j, c in self.co[h].items():
                s[j] += decay * c
        pops = np.array([self.pop.get(i, 0.0) for i in range(len(self.items))])
        return s / np.maximum(pops, 1.0) ** self.alpha


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

    def update(self, user, item, weight, ts):
        i = self._idx(item)
        self.seen[user].add(i)
        self.model.learn_one(user, item, weight)
        if weight > 0 and len(self.items) > 1:
            for j in self.rng.integers(0, len(self.items), self.negatives):
                if int(j) not in self.seen[user]:
                    self.model.learn_one(user, self.items[int(j)], 0.0)

    def scores(self, user, now):
        m = self.model
        n = len(self.items)
        ib = np.array([m.i_biases.get(it, 0.0) for it in self.items])
        if user not in m.u_latents:
            return m.global_mean.get() + ib
        if not n:
            return np.zeros(0)
        u = np.asarray(m.u_latents[user], float)
        zero = np.zeros(m.n_factors)
        lat = np.stack([np.asarray(m.i_latents[it], float) if it in m.i_latents else zero for it in self.items])
        return m.global_mean.get() + m.u_biases.get(user, 0.0) + ib + lat @ u


BASELINES = (PopularityBaseline, DecayedPopularityBaseline, ItemKNNBaseline, RiverMFBaseline)
