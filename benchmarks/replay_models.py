"""Which model class could beat item-kNN on a real log by 1.2x? Candidates measured with the replay's
own protocol (``evaluation.replay.evaluate``), before any of them is built into the service.

On MovieLens 100K ClipStream's linear ranker reaches 1.015x item-kNN (issue #5 asks for 1.2x). Each
candidate here is a different way to use the same stream: direction and distance in a user's
sequence (first-order transitions), neighbouring users instead of neighbouring items (session-kNN,
as in Ludewig et al. 2019), and a closed-form item-to-item regression refitted on a schedule (EASE,
Steck 2019). Every one is compared, in the same run, with the replay's item-kNN baseline.

    python -m benchmarks.replay_models [--limit 20000] [--interactions FILE]

Writes ``benchmarks/results/replay_models.json``.
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.common import write_result
from evaluation.baselines import ItemKNNBaseline, ScoreBaseline
from evaluation.replay import (
    BaselineSystem,
    evaluate,
    read_interactions,
    shared_tiebreak,
)

DEFAULT_LOG = Path("var/datasets/ml-100k/interactions.csv")


class _Counting(ScoreBaseline):
    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[int]] = defaultdict(list)
        self.pop = np.zeros(0)

    def _count(self, item: str) -> int:
        i = self._idx(item)
        if i >= len(self.pop):
            self.pop = np.concatenate([self.pop, np.zeros(max(256, i + 1 - len(self.pop)))])
        self.pop[i] += 1
        return i


class TransitionModel(_Counting):
    """Directed co-occurrence: b after a within ``gap`` steps of one user's sequence counts
    1/distance**dist_pow towards a -> b (and ``backward`` times that towards b -> a)."""

    def __init__(self, gap: int = 10, backward: float = 0.0, dist_pow: float = 1.0, history: int = 20,
                 decay: float = 0.9, alpha: float = 0.5, name: str = "transitions") -> None:
        super().__init__()
        self.name = name
        self.gap, self.backward, self.dist_pow = gap, backward, dist_pow
        self.window, self.decay, self.alpha = history, decay, alpha
        self.after: dict[int, dict[int, float]] = defaultdict(dict)

    def update(self, user, item, weight, ts):
        if weight <= 0:
            return
        i = self._count(item)
        for distance, j in enumerate(reversed(self.history[user][-self.gap:]), 1):
            if j != i:
                w = 1.0 / distance ** self.dist_pow
                self.after[j][i] = self.after[j].get(i, 0.0) + w
                if self.backward:
                    self.after[i][j] = self.after[i].get(j, 0.0) + self.backward * w
        self.history[user].append(i)

    def scores(self, user, now):
        s = np.zeros(len(self.items))
        for age, h in enumerate(reversed(self.history[user][-self.window:])):
            row = self.after.get(h)
            if row:
                s[np.fromiter(row, int, len(row))] += self.decay ** age * np.fromiter(row.values(), float, len(row))
        return s / np.maximum(self.pop[: len(self.items)], 1.0) ** self.alpha


class SessionKNN(_Counting):
    """Users whose histories share the user's last ``recent`` items (idf-weighted, recency-decayed
    overlap); the ``neighbours`` most similar vote for their items, by similarity / sqrt(history)."""

    name = "session_knn"

    def __init__(self, recent: int = 10, neighbours: int = 200) -> None:
        super().__init__()
        self.recent, self.neighbours = recent, neighbours
        self.users_of: dict[int, set[str]] = defaultdict(set)

    def update(self, user, item, weight, ts):
        if weight <= 0:
            return
        i = self._count(item)
        self.history[user].append(i)
        self.users_of[i].add(user)

    def scores(self, user, now):
        s = np.zeros(len(self.items))
        similarity: dict[str, float] = defaultdict(float)
        for age, i in enumerate(reversed(self.history[user][-self.recent:])):
            w = 0.95 ** age / math.log(2 + self.pop[i])
            for other in self.users_of[i]:
                if other != user:
                    similarity[other] += w
        for other, w in sorted(similarity.items(), key=lambda kv: -kv[1])[: self.neighbours]:
            theirs = self.history[other]
            s[np.asarray(theirs)] += w / math.sqrt(len(theirs))
        return s


class EASE(_Counting):
    """Closed-form item-to-item regression (B = I - P / diag(P), P = (X'X + lambda I)^-1) refitted
    every ``every`` events on every history so far; a user's last ``recent`` items, recency-decayed,
    times B."""

    name = "ease"

    def __init__(self, lam: float = 500.0, every: int = 2000, recent: int = 20, decay: float = 0.9) -> None:
        super().__init__()
        self.lam, self.every, self.recent, self.decay = lam, every, recent, decay
        self.b: np.ndarray | None = None
        self.seen = 0

    def update(self, user, item, weight, ts):
        if weight <= 0:
            return
        self.history[user].append(self._count(item))
        self.seen += 1
        if self.seen % self.every == 0:
            self._fit()

    def _fit(self) -> None:
        n = len(self.items)
        gram = np.zeros((n, n))
        for history in self.history.values():
            rows = np.unique(history)
            gram[np.ix_(rows, rows)] += 1.0
        gram[np.diag_indices(n)] += self.lam
        p = np.linalg.inv(gram)
        self.b = p / -np.diag(p)
        self.b[np.diag_indices(n)] = 0.0

    def scores(self, user, now):
        n = len(self.items)
        if self.b is None:
            return self.pop[:n].copy()
        x = np.zeros(len(self.b))
        for age, i in enumerate(reversed(self.history[user][-self.recent:])):
            if i < len(x):
                x[i] += self.decay ** age
        s = np.zeros(n)
        s[: len(x)] = x @ self.b
        return s


def candidates() -> list[ScoreBaseline]:
    return [ItemKNNBaseline(),
            TransitionModel(name="transitions_forward"),
            TransitionModel(gap=20, backward=0.5, name="transitions_both_ways"),
            SessionKNN(),
            EASE()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interactions", type=Path, default=DEFAULT_LOG,
                   help="an interaction log (default: MovieLens 100K, `clipstream interactions --source movielens-100k "
                        "--out var/datasets/ml-100k`)")
    p.add_argument("--limit", type=int, default=20000, help="replay the first N events (0: all)")
    args = p.parse_args(argv)
    if not args.interactions.is_file():
        from devkit.movielens import prepare

        prepare(args.interactions.parent, Path("var/datasets"))
    log = read_interactions(args.interactions)[: args.limit or None]
    tiebreak = shared_tiebreak(log, {})
    result = evaluate(log, [BaselineSystem(m) for m in candidates()], tiebreak, ours="item_knn")
    knn = result["systems"]["item_knn"]["ndcg@10"]
    print(f"{'model':24} {'NDCG@10':>8} {'Recall@20':>9} {'x item-kNN':>10}")
    for name, m in sorted(result["systems"].items(), key=lambda kv: -kv[1]["ndcg@10"]):
        print(f"{name:24} {m['ndcg@10']:8.4f} {m['recall@20']:9.4f} {m['ndcg@10'] / knn if knn else 0:10.2f}")
    path = write_result("replay_models", {"interactions": str(args.interactions), "limit": args.limit, **result})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
