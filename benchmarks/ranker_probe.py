"""Ceiling probe for issue #18: would a ranker fitted to the feed's own candidate lists beat the scorer's
prior weights, with the features the feed has today?

ClipStream's replay of a tuning log (YOOCHOOSE's first 3 days by default, or MovieLens 100K's first 10k events)
records, at every scored event, every candidate the feed scored (its features, ``features.FEATURES``) and which
one the user went on to watch. On the first half of those lists, two rankers are fitted offline with a listwise
loss (softmax cross-entropy of the watched candidate, the objective closest to NDCG): the linear scorer started
from the prior weights (pulled towards them), and the same plus a small MLP residual (non-linear). Both, and the
prior weights themselves, are scored on the second half with the replay's NDCG@10 (rank among the candidates;
0 when the watched video is not among them).

    python -m benchmarks.ranker_probe [--log yoochoose|movielens] [--epochs 10] [--logs DIR]

    python -m benchmarks.ranker_probe --logs DIR   (DIR: the folder holding yoochoose-clicks-even.csv)

Writes ``benchmarks/results/ranker_probe_<log>.json``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.common import write_result
from benchmarks.replay_logs import tuning_logs
from evaluation.replay import ClipStreamSystem, evaluate, item_vectors, shared_tiebreak
from services.recommender.core import feed
from services.recommender.core.features import FEATURES, candidate_features
from shared.settings import SCORER_WEIGHTS, RecommenderSettings

List = tuple[np.ndarray, int, np.ndarray]  # one scored event: candidates' features (n, len(FEATURES)), the watched
# one's row (-1: not a candidate), and the scores the feed gave them (the online-learned weights of that moment)


class RecordingScorer(feed.LinearScorer):
    """The feed's scorer, keeping the candidates' features and scores of the latest feed."""

    last: tuple[list[str], np.ndarray, np.ndarray] | None = None

    def score(self, ctx, cands):
        scored = super().score(ctx, cands)
        if cands:
            ids = [c.video_id for c in cands]
            self.last = (ids, candidate_features(ctx, ids), np.array([c.score for c in scored]))
        return scored


@contextmanager
def recording():
    scorer, saved = RecordingScorer(), feed.SCORER
    feed.SCORER = scorer
    try:
        yield scorer
    finally:
        feed.SCORER = saved


class Recorded(ClipStreamSystem):
    """ClipStream in the replay, turning each scored feed and the event after it into a :data:`List`."""

    def __init__(self, scorer: RecordingScorer, *args) -> None:
        super().__init__(*args)
        self.scorer, self.lists, self.pending = scorer, [], None
        self.contexts: list[tuple[list[str], list[str], float]] = []  # each list's candidate ids, the user's
        # recent positives before the event, and its time (for probes that add a feature of their own)

    def rank(self, user, k, exclude, now):
        self.scorer.last = None
        ranked = super().rank(user, k, exclude, now)
        self.pending = (user, self.scorer.last, exclude, list(self.rec.user(user).recent_positive), now)
        return ranked

    def update(self, ev):
        if self.pending is not None and self.pending[0] == ev.user and self.pending[1] is not None:
            ids, x, given = self.pending[1]
            keep = [i for i, v in enumerate(ids) if v not in self.pending[2]]
            ids = [ids[i] for i in keep]
            self.lists.append((x[keep], ids.index(ev.item) if ev.item in ids else -1, given[keep]))
            self.contexts.append((ids, self.pending[3], self.pending[4]))
        self.pending = None
        super().update(ev)


def record(interactions: list, meta: dict, contexts: list | None = None) -> list[List]:
    """The lists of ClipStream's replay of ``interactions``; ``contexts``, when given, receives each one's
    (candidate ids, recent positives, time)."""
    tiebreak = shared_tiebreak(interactions, meta)
    with tempfile.TemporaryDirectory(prefix="clipstream-ranker-probe-") as tmp, recording() as scorer:
        vectors = item_vectors(sorted(tiebreak), meta)
        settings = RecommenderSettings(state_dir=Path(tmp) / "state", content_vectors=all(i in meta for i in vectors))
        ours = Recorded(scorer, vectors, meta, Path(tmp), settings)
        evaluate(interactions, [ours], tiebreak, progress=True)
    if contexts is not None:
        contexts.extend(ours.contexts)
    return ours.lists


def ndcg(lists: list[List], score) -> float:
    """The replay's NDCG@10 of ranking each list by ``score(features, given scores)``; ties count against the
    watched one."""
    out = []
    for x, label, given in lists:
        if label < 0:
            out.append(0.0)
            continue
        s = score(x, given)
        rank = int((s >= s[label]).sum()) - 1  # every other candidate scored as high ranks above it
        out.append(1 / math.log2(rank + 2) if rank < 10 else 0.0)
    return float(np.mean(out)) if out else 0.0


class Ranker(nn.Module):
    """prior . x (learned, from the prior weights) plus, with ``hidden``, an MLP residual that starts at 0."""

    def __init__(self, prior: np.ndarray, hidden: int = 0) -> None:
        super().__init__()
        self.prior = torch.tensor(prior, dtype=torch.float32)
        self.linear = nn.Parameter(self.prior.clone())
        self.mlp = nn.Sequential(nn.Linear(len(prior), hidden), nn.ReLU(), nn.Linear(hidden, 1)) if hidden else None
        if self.mlp is not None:
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x @ self.linear
        return out if self.mlp is None else out + self.mlp(x).squeeze(-1)


def fit(model: Ranker, lists: list[List], epochs: int, lr: float = 0.01, l2: float = 1e-3, batch: int = 32,
        seed: int = 0) -> list[float]:
    """Listwise softmax cross-entropy over the lists whose watched video is a candidate; returns the mean loss of
    each epoch."""
    torch.manual_seed(seed)
    data = [(torch.tensor(x, dtype=torch.float32), label) for x, label, _ in lists if label >= 0]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        order = np.random.default_rng(seed + epoch).permutation(len(data))
        total = 0.0
        for start in range(0, len(order), batch):
            loss = sum(-torch.log_softmax(model(data[j][0]), 0)[data[j][1]] for j in order[start:start + batch])
            loss = loss / batch + l2 * ((model.linear - model.prior) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * batch
        losses.append(total / max(1, len(data)))
    return losses


def scorer(model: Ranker):
    def score(x: np.ndarray, given: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.tensor(x, dtype=torch.float32)).numpy()
    return score


def probe_args(doc: str, argv: list[str] | None, epochs: int,
               more: Callable[[argparse.ArgumentParser], None] = lambda ap: None) -> tuple[argparse.Namespace, tuple]:
    """A probe's command line (--log, --logs, --epochs and ``more``) and its tuning log (name, interactions, meta)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", choices=("yoochoose", "movielens"), default="yoochoose")
    ap.add_argument("--logs", type=Path, help="the folder holding yoochoose-clicks-even.csv (for --log yoochoose)")
    ap.add_argument("--epochs", type=int, default=epochs)
    more(ap)
    args = ap.parse_args(argv)
    if args.log == "yoochoose" and args.logs is None:
        ap.error("--log yoochoose needs --logs DIR (the folder holding yoochoose-clicks-even.csv)")
    [log] = tuning_logs(args.logs, [args.log])
    return args, log


def main(argv: list[str] | None = None) -> dict:
    args, (name, interactions, meta) = probe_args(__doc__, argv, epochs=10)
    lists = record(interactions, meta)
    half = len(lists) // 2
    train, test = lists[:half], lists[half:]
    prior = np.array([SCORER_WEIGHTS[f] for f in FEATURES])
    base = ndcg(test, lambda x, given: x @ prior)
    rows = {"prior weights": base, "online learner, as the replay scored": ndcg(test, lambda x, given: given)}
    for label, hidden in (("linear, listwise from the prior", 0), ("linear + MLP residual (32 hidden)", 32)):
        model = Ranker(prior, hidden)
        fit(model, train, args.epochs)
        rows[label] = ndcg(test, scorer(model))
    result = {"log": name, "lists": len(lists), "train_lists": half, "with_watched_candidate": sum(lab >= 0 for _, lab, _ in lists),
              "epochs": args.epochs, "ndcg@10_second_half": {k: round(v, 4) for k, v in rows.items()},
              "ratio_to_prior": {k: round(v / base, 3) if base else None for k, v in rows.items()}}
    for k, v in rows.items():
        print(f"{k}: NDCG@10 {v:.4f} ({v / base if base else float('nan'):.3f}x the prior weights)")
    path = write_result(f"ranker_probe_{args.log}", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
