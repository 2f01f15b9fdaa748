"""Train the video encoder: contrastive (two views of one clip are positives) plus a topic head.

    python -m training.train_encoder --corpus var/corpus/train --steps 500 --out models

Fixed seeds; a progress bar; exports ``video_encoder.onnx`` (dynamic batch and frame axes) and
records it in ``models/manifest.json`` with its sha256 and this command.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from devkit.corpus import TOPICS, make_corpus
from training.augment import view
from training.encoder_data import keyframe_cache
from training.export import MODELS_DIR, command_line, export_onnx, record
from training.video_model import VideoEncoder

VERSION = "video-encoder-1"


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    logits = a @ b.T / temperature
    target = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def train(frames: np.ndarray, topics: np.ndarray, steps: int, batch: int, k: int, lr: float, seed: int,
          topic_weight: float, temperature: float) -> tuple[VideoEncoder, list[dict]]:
    g = seed_everything(seed)
    model = VideoEncoder(topics=len(TOPICS))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    clips = torch.from_numpy(frames).permute(0, 1, 4, 2, 3)  # N, T, 3, S, S uint8
    labels = torch.from_numpy(topics)
    history = []
    bar = tqdm(range(steps), desc="training video encoder", unit="step")
    for step in bar:
        idx = torch.randperm(len(clips), generator=g)[:batch]
        views = [torch.stack([view(clips[i].float() / 255.0, k, g) for i in idx]) for _ in range(2)]
        mask = torch.ones(batch, k)
        model.train()
        (ea, la), (eb, lb) = model(views[0], mask), model(views[1], mask)
        contrastive = info_nce(ea, eb, temperature)
        topic = 0.5 * (F.cross_entropy(la, labels[idx]) + F.cross_entropy(lb, labels[idx]))
        loss = contrastive + topic_weight * topic
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        row = {"step": step, "loss": round(loss.item(), 4), "contrastive": round(contrastive.item(), 4),
               "topic": round(topic.item(), 4)}
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", nce=f"{row['contrastive']:.3f}", topic=f"{row['topic']:.3f}")
    model.eval()
    return model, history


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=Path("var/corpus/train"))
    p.add_argument("--clips", type=int, default=600, help="corpus size when the corpus folder is empty")
    p.add_argument("--corpus-seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=MODELS_DIR)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--frame-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--topic-weight", type=float, default=0.5)
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (args.corpus / "manifest.jsonl").exists():
        make_corpus(args.corpus, args.clips, seed=args.corpus_seed)
    frames, topics, rows = keyframe_cache(args.corpus, args.frame_size)
    started = time.time()
    model, history = train(frames, topics, args.steps, args.batch, args.frames, args.lr, args.seed,
                           args.topic_weight, args.temperature)
    checkpoint = args.out / "checkpoints" / "video_encoder.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "args": vars(args) | {"corpus": str(args.corpus), "out": str(args.out)}},
               checkpoint)
    dummy = (torch.rand(2, args.frames, 3, args.frame_size, args.frame_size), torch.ones(2, args.frames))
    path = export_onnx(model, dummy, args.out / "video_encoder.onnx", ["frames", "mask"], ["embedding", "topic_logits"],
                       {"frames": {0: "batch", 1: "frames"}, "mask": {0: "batch", 1: "frames"},
                        "embedding": {0: "batch"}, "topic_logits": {0: "batch"}})
    entry = record("video-encoder", path, VERSION, command_line("training.train_encoder"), {
        "inputs": {"frames": ["batch", "frames", 3, args.frame_size, args.frame_size], "mask": ["batch", "frames"]},
        "outputs": {"embedding": ["batch", 128], "topic_logits": ["batch", len(TOPICS)]},
        "topics": list(TOPICS), "frame_size": args.frame_size, "frames": args.frames,
        "train_seconds": round(time.time() - started, 1), "clips": len(rows),
        "final_loss": history[-1], "seed": args.seed,
    })
    print(f"wrote {path} ({entry['bytes']} bytes, sha256 {entry['sha256'][:16]}…) in {entry['train_seconds']} s")


if __name__ == "__main__":
    main()
