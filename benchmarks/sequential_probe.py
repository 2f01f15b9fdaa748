"""Ceiling probe for issue #5: does a sequential model (SASRec-style self-attention over a user's
last items, Kang & McAuley 2018) beat item-kNN on a real log, before anyone builds one into the service?

Trained once on the log's first ``--train`` events (every user's sequence, next-item cross-entropy
over the whole catalogue), then frozen and scored with the replay's rules on the next ``--test``
events: each scored event ranks the catalogue items the user has not interacted with, histories
grow as events arrive; item-kNN, learning online, is scored on the same events in the same run.

    python -m benchmarks.sequential_probe [--train 60000 --test 10000 --epochs 200]

Needs numpy and torch only (runs on a bare GPU machine; uses CUDA when present). Writes
``benchmarks/results/sequential_probe.json``.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.common import write_result
from evaluation.baselines import ItemKNNBaseline

DEFAULT_LOG = Path("var/datasets/ml-100k/interactions.csv")


def read_log(path: Path) -> list[tuple[str, str, float]]:
    with open(path, newline="") as f:
        rows = [(r["user_id"], r["item_id"], float(r["timestamp"])) for r in csv.DictReader(f)]
    return [rows[i] for i in sorted(range(len(rows)), key=lambda i: (rows[i][2], i))]  # ties in file order


class SelfAttentiveRecommender(nn.Module):
    def __init__(self, items: int, length: int, dim: int = 64, layers: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.length = length
        self.items = nn.Embedding(items + 1, dim, padding_idx=0)
        nn.init.normal_(self.items.weight, std=dim ** -0.5)  # unit-scale inputs, logits about N(0, 1)
        with torch.no_grad():
            self.items.weight[0].zero_()
        self.positions = nn.Embedding(length, dim)
        nn.init.normal_(self.positions.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, 2, dim * 2, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        causal = torch.triu(torch.ones(self.length, self.length, dtype=torch.bool, device=x.device), 1)
        h = self.dropout(self.items(x) * math.sqrt(self.items.embedding_dim) + self.positions.weight[None])
        return self.norm(self.encoder(h, mask=causal)) @ self.items.weight.T  # (B, L, items + 1)


def left_pad(seq: list[int], length: int) -> list[int]:
    return [0] * (length - len(seq)) + seq[-length:]


def training_windows(sequences: list[list[int]], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for seq in sequences:
        for end in range(len(seq), 1, -length):  # non-overlapping windows from the end
            window = seq[max(0, end - length - 1):end]
            xs.append(left_pad(window[:-1], length))
            ys.append(left_pad(window[1:], length))
    return torch.tensor(xs), torch.tensor(ys)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, device: str) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = x.to(device), y.to(device)
    losses = []
    for _ in range(epochs):
        model.train()
        total, batches = 0.0, 0
        for idx in torch.randperm(len(x), device=device).split(128):
            logits = model(x[idx])
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[idx].reshape(-1), ignore_index=0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, batches = total + loss.item(), batches + 1
        losses.append(total / batches)
    return losses


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interactions", type=Path, default=DEFAULT_LOG)
    p.add_argument("--train", type=int, default=60000)
    p.add_argument("--test", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--length", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log = read_log(args.interactions)
    items = sorted({item for _, item, _ in log})
    code = {item: i + 1 for i, item in enumerate(items)}
    tie = dict(zip(items, np.random.default_rng(args.seed).permutation(len(items)).tolist()))
    sequences: dict[str, list[int]] = defaultdict(list)
    for user, item, _ in log[: args.train]:
        sequences[user].append(code[item])
    model = SelfAttentiveRecommender(len(items), args.length).to(device)
    started = time.time()
    losses = train(model, *training_windows([s for s in sequences.values() if len(s) > 1], args.length), args.epochs,
                   device)
    train_s = time.time() - started
    model.eval()
    knn = ItemKNNBaseline()
    history: dict[str, list[int]] = defaultdict(list)
    seen: dict[str, set[str]] = defaultdict(set)
    catalogue: set[str] = set()
    ndcg: dict[str, list[float]] = {"item_knn": [], "sequential": []}
    for n, (user, item, ts) in enumerate(log[: args.train + args.test]):
        if n >= args.train and item in catalogue and seen[user]:
            cands = [i for i in items if i in catalogue and i not in seen[user]]
            knn_scores = np.asarray(knn.scores(user, ts), float)
            by_knn = np.array([knn_scores[knn.index[i]] for i in cands])
            with torch.no_grad():
                x = torch.tensor([left_pad(history[user], args.length)], device=device)
                logits = model(x)[0, -1].cpu().numpy()
            by_seq = logits[[code[i] for i in cands]]
            ties = np.array([tie[i] for i in cands])
            for name, scores in (("item_knn", by_knn), ("sequential", by_seq)):
                top = [cands[i] for i in np.lexsort((ties, -scores))[:10]]
                ndcg[name].append(1 / math.log2(top.index(item) + 2) if item in top else 0.0)
        knn.update(user, item, 1.0, ts)
        history[user].append(code[item])
        seen[user].add(item)
        catalogue.add(item)
    result = {"interactions": str(args.interactions), "train_events": args.train, "test_events": args.test,
              "scored": len(ndcg["item_knn"]), "epochs": args.epochs, "device": device,
              "gpu": torch.cuda.get_device_name() if device == "cuda" else None, "train_s": round(train_s, 1),
              "final_loss": round(losses[-1], 4),
              "ndcg@10": {k: round(float(np.mean(v)), 4) for k, v in ndcg.items()}}
    result["ratio_sequential_over_item_knn"] = round(result["ndcg@10"]["sequential"] / result["ndcg@10"]["item_knn"], 3)
    path = write_result("sequential_probe", result)
    print(result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
