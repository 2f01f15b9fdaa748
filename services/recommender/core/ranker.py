"""The scorer's weights, learned online from the watch stream (pairwise logistic regression).

Each learning event is a positive watch: before it is applied, the watched video should score
above videos the user did not pick. ``learn`` takes one gradient step on
log(1 + exp(-(w . (x_pos - x_neg)))) per sampled negative, with L2 towards the configured
weights (the prior a new deployment starts from). Weights are kept per partition, stored with
its offsets, and averaged (by updates) over the partitions an instance holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass
class Ranker:
    weights: np.ndarray
    updates: int = 0

    def learn(self, positive: np.ndarray, negatives: np.ndarray, prior: np.ndarray, rate: float, l2: float) -> None:
        for negative in negatives:
            diff = positive - negative
            margin = float(self.weights @ diff)
            grad = 1.0 / (1.0 + math.exp(min(margin, 50.0)))  # sigmoid(-margin)
            self.weights += rate * (grad * diff - l2 * (self.weights - prior))
        self.updates += 1

    def to_bytes(self) -> bytes:
        return np.asarray(self.weights, np.float64).tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes, updates: int) -> Ranker:
        return cls(np.frombuffer(raw, np.float64).copy(), updates)


def blend(rankers: Iterable[Ranker], prior: np.ndarray) -> np.ndarray:
    """Update-weighted mean of the rankers' weights; the prior where nothing was learned yet."""
    rankers = [r for r in rankers if r.updates and len(r.weights) == len(prior)]
    total = sum(r.updates for r in rankers)
    if not total:
        return prior.copy()
    return sum(r.weights * (r.updates / total) for r in rankers)
