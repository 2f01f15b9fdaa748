"""Probe for issue #18: would a sequential model, retrained every day on the watch log, add to the feed's ranker
as one more feature?

ClipStream's replay of a tuning log (``ranker_probe.record``) gives every scored feed's candidates with their
features, the video watched next, and the user's recent positives. A small GRU next-item model (GRU4Rec style,
Hidasi et al. 2016: the last ``--window`` items in, softmax over the catalogue out) is trained on each day's
history as a schedule would retrain it: the model of days 1..d-1 scores the candidates of day d. Its feature is
a candidate's probability over the list's most probable one (in [0, 1], like the votes). The linear ranker is
fitted listwise (``ranker_probe.fit``) on day 2's lists with and without the feature, and both are scored on the
lists of day 3 onwards with the replay's NDCG@10, beside the online learner as replayed.

    python -m benchmarks.sequential_feature_probe --logs DIR [--log yoochoose|movielens] [--epochs 15]

Writes ``benchmarks/results/sequential_feature_probe_<log>.json``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmarks.common import write_result
from benchmarks.ranker_probe import Ranker, fit, ndcg, probe_args, record, scorer
from benchmarks.sequential_probe import left_pad
from services.recommender.core.features import FEATURES
from shared.settings import SCORER_WEIGHTS

DAY = 86400.0


class NextItem(nn.Module):
    """Embedding -> GRU -> a logit per item (index 0 pads)."""

    def __init__(self, n_items: int, dim: int = 64) -> None:
        super().__init__()
        self.emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.out = nn.Linear(dim, n_items + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.gru(self.emb(x))
        return self.out(hidden[:, -1])


def training_pairs(interactions: list, until: float, index: dict[str, int], window: int) -> tuple[list, list]:
    """(prefix, next item) of every user's distinct positives before ``until``."""
    histories: dict[str, list[int]] = {}
    xs, ys = [], []
    for ev in interactions:
        if ev.ts >= until:
            break
        seq = histories.setdefault(ev.user, [])
        item = index[ev.item]
        if ev.weight <= 0 or item in seq:
            continue
        if seq:
            xs.append(left_pad(seq, window))
            ys.append(item)
        seq.append(item)
    return xs, ys


def train(interactions: list, until: float, index: dict[str, int], window: int, epochs: int,
          seed: int = 0) -> tuple[NextItem, int]:
    torch.manual_seed(seed)
    xs, ys = training_pairs(interactions, until, index, window)
    model = NextItem(len(index))
    if not xs:
        return model, 0
    x, y = torch.tensor(xs), torch.tensor(ys)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-5)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 128):
            batch = order[start:start + 128]
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), len(xs)


def with_feature(one: tuple, context: tuple, model: NextItem, index: dict[str, int], window: int) -> tuple:
    """A list with one more column: the model's probability of each candidate over the list's largest."""
    (x, label, given), (ids, recent, _) = one, context
    seq = [index[i] for i in recent if i in index]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([left_pad(seq, window)])), 1)[0].numpy()
    f = np.array([logp[index[i]] if i in index else -np.inf for i in ids])
    return np.column_stack([x, np.exp(f - f.max())]), label, given


def main(argv: list[str] | None = None) -> dict:
    args, (name, interactions, meta) = probe_args(__doc__, argv, epochs=15, more=lambda ap: ap.add_argument(
        "--window", type=int, default=5, help="the last positives the GRU reads"))
    contexts: list = []
    lists = record(interactions, meta, contexts)
    index = {item: i + 1 for i, item in enumerate(sorted({ev.item for ev in interactions}))}
    start = interactions[0].ts
    day_of = [int((ts - start) // DAY) for _, _, ts in contexts]
    models = {}
    for day in sorted(set(day_of)):
        if day >= 1:
            models[day] = train(interactions, start + day * DAY, index, args.window, args.epochs)
    fit_rows = [i for i, d in enumerate(day_of) if d == 1]
    test_rows = [i for i, d in enumerate(day_of) if d >= 2]
    plain_fit, plain_test = [lists[i] for i in fit_rows], [lists[i] for i in test_rows]
    seq_fit, seq_test = ([with_feature(lists[i], contexts[i], models[day_of[i]][0], index, args.window) for i in rows]
                         for rows in (fit_rows, test_rows))
    prior = np.array([SCORER_WEIGHTS[f] for f in FEATURES])
    without, withseq = Ranker(prior), Ranker(np.append(prior, 0.0))
    fit(without, plain_fit, 10)
    fit(withseq, seq_fit, 10)
    scores = {"online learner, as replayed": ndcg(plain_test, lambda x, given: given),
            "GRU alone": ndcg(seq_test, lambda x, given: x[:, -1]),
            "linear, listwise, without the GRU": ndcg(plain_test, scorer(without)),
            "linear, listwise, with the GRU": ndcg(seq_test, scorer(withseq))}
    result = {"log": name, "lists": len(lists), "fit_lists": len(fit_rows), "test_lists": len(test_rows),
              "training_pairs_by_day": {d: n for d, (_, n) in models.items()}, "epochs": args.epochs,
              "window": args.window, "gru_weight": round(withseq.linear[-1].item(), 3),
              "ndcg@10_from_day_3": {k: round(v, 4) for k, v in scores.items()}}
    for k, v in scores.items():
        print(f"{k}: NDCG@10 {v:.4f}")
    print(f"the GRU feature's fitted weight: {result['gru_weight']}")
    path = write_result(f"sequential_feature_probe_{args.log}", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
