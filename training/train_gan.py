"""Train the topic-conditioned GAN on synthetic corpus frames and export its generator to ONNX.

    python -m training.train_gan --epochs 20 --batch 64 [--resume] [--out models/generation]

Fixed seeds; a progress bar; a sample grid per epoch in ``var/gan_train/epoch_NNN.png`` (one row per
topic, same latents every epoch; ``real.png`` holds real frames for comparison); a resumable checkpoint
(``var/checkpoints/gan.pt``: G, D, the EMA of G, both optimisers, RNG state, epoch, history); the
exported generator's weights go to ``models/checkpoints/topic_gan_ema.pt`` (for the ONNX-vs-torch test).
At the end the EMA generator is exported to ``<out>/topic_gan.onnx`` and recorded in
``<out>/manifest.json``, with a conditional-accuracy check: a small CNN trained on real frames
classifies generated images (held-out real frames, seed 9001, measure the classifier itself).

The mode-seeking term (``--mode-seeking``, from epoch ``--mode-seeking-from`` = 2) stops the generator
ignoring z within a topic; the first epochs without it let the topics take shape first. A run
resumed with ``--resume`` records the command without that flag (the epochs and RNG state carry over).

ONNX contract: inputs ``z`` float32 (N, z_dim) and ``topic`` int64 (N,); output ``image`` float32
(N, 3, 64, 64) RGB in [0, 1]. Topic ids index ``devkit.corpus.TOPICS``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from devkit.corpus import TOPICS
from services.generation.core.latent import latents
from training.export import MODELS_DIR, command_line, export_onnx, record
from training.gan import (
    Discriminator,
    ExportedGenerator,
    Generator,
    TopicClassifier,
    d_hinge,
    ema_update,
    g_hinge,
    mode_seeking,
    parameter_count,
    recalibrate_bn,
)
from training.gan_data import HELD_OUT_SEED, frame_cache, render

VERSION = "topic-gan-1"
MODEL_NAME = "topic-gan"
ONNX_NAME = "topic_gan.onnx"
SAMPLES_DIR = Path("var/gan_train")
CHECKPOINT = Path("var/checkpoints/gan.pt")  # resumable training state (G, D, optimisers): not committed
EMA_WEIGHTS = MODELS_DIR / "checkpoints" / "topic_gan_ema.pt"  # the exported generator's weights: committed


def to_unit(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def save_grid(images: torch.Tensor, columns: int, path: Path) -> None:
    """Tile (N, 3, H, W) images in [-1, 1] row-major into a PNG with 2-pixel gutters."""
    img = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    rows, (h, w) = len(img) // columns, img.shape[1:3]
    canvas = np.full((rows * (h + 2) + 2, columns * (w + 2) + 2, 3), 255, np.uint8)
    for i, tile in enumerate(img):
        r, c = divmod(i, columns)
        canvas[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + c * (w + 2):2 + c * (w + 2) + w] = tile
    path.parent.mkdir(parents=True, exist_ok=True)
    big = cv2.resize(canvas, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(path), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))


@torch.no_grad()
def sample(generator: Generator, topic_ids: np.ndarray, seed: int) -> torch.Tensor:
    """Images in [-1, 1] for the given topics, latents from ``latents(seed, ...)`` (the serving path's)."""
    z = torch.from_numpy(latents(seed, len(topic_ids), generator.z_dim))
    return generator.eval()(z, torch.from_numpy(topic_ids.astype(np.int64)))


def build(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    G = Generator(args.z_dim, len(TOPICS), args.width)
    D = Discriminator(len(TOPICS), args.d_width)
    betas = (args.beta1, args.beta2)
    return {"G": G, "D": D, "ema": copy.deepcopy(G).eval(),
            "opt_g": torch.optim.Adam(G.parameters(), args.lr_g, betas=betas),
            "opt_d": torch.optim.Adam(D.parameters(), args.lr_d, betas=betas),
            "epoch": 0, "step": 0, "seconds": 0.0, "history": []}


def save_checkpoint(state: dict, args: argparse.Namespace, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in state.items()}
    blob |= {"config": {"z_dim": args.z_dim, "width": args.width, "d_width": args.d_width, "topics": list(TOPICS)},
             "rng": torch.get_rng_state(), "args": {k: str(v) for k, v in vars(args).items()}}
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def load_checkpoint(state: dict, path: Path) -> None:
    blob = torch.load(path, weights_only=False)
    for k, v in state.items():
        if hasattr(v, "load_state_dict"):
            v.load_state_dict(blob[k])
        else:
            state[k] = blob[k]
    torch.set_rng_state(blob["rng"])


def train_epoch(state: dict, data: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace) -> dict:
    """One pass over the data: a D step (hinge, real vs fake) and a G step per batch, then the EMA update."""
    G, D, ema, opt_g, opt_d = state["G"], state["D"], state["ema"], state["opt_g"], state["opt_d"]
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(args.seed * 1000 + state["epoch"]))
    batches = len(data) // args.batch
    sums = {"d": 0.0, "g": 0.0, "real": 0.0, "fake": 0.0}
    G.train()
    D.train()
    bar = tqdm(range(batches), desc=f"epoch {state['epoch'] + 1}/{args.epochs}", unit="step")
    for b in bar:
        idx = order[b * args.batch:(b + 1) * args.batch]
        real, topic = data[idx].float().div(127.5).sub(1), labels[idx]
        z = torch.randn(len(idx), args.z_dim)
        with torch.no_grad():
            fake = G(z, topic)
        scores = D(torch.cat([real, fake]), torch.cat([topic, topic]))
        d_real, d_fake = scores[:len(idx)], scores[len(idx):]
        loss_d = d_hinge(d_real, d_fake)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        seeking = bool(args.mode_seeking) and state["epoch"] >= args.mode_seeking_from
        z = torch.randn(len(idx), args.z_dim)
        paired = torch.cat([topic[:len(idx) // 2]] * 2) if seeking else topic  # rows i, i + N/2 share a topic
        fake = G(z, paired)
        loss_g = hinge = g_hinge(D(fake, paired))
        if seeking:
            ms = mode_seeking(fake, z)
            sums["ms"] = sums.get("ms", 0.0) + ms.item()
            loss_g = loss_g + args.mode_seeking * ms
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        state["step"] += 1
        ema_update(ema, G, min(args.ema, (1 + state["step"]) / (10 + state["step"])))
        for k, v in (("d", loss_d), ("g", hinge), ("real", d_real.mean()), ("fake", d_fake.mean())):
            sums[k] += v.item()
        bar.set_postfix(d=f"{loss_d.item():.3f}", g=f"{hinge.item():.3f}", ms=f"{ms.item() if seeking else 0:.2f}")
    return {k: round(v / batches, 4) for k, v in sums.items()}


def fit_classifier(data: torch.Tensor, labels: torch.Tensor, steps: int = 400, seed: int = 0) -> TopicClassifier:
    """A small topic CNN on real frames (uint8 NCHW), with horizontal flips as augmentation."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = TopicClassifier(len(TOPICS))
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    small = F.interpolate(data.float().div(127.5).sub(1), size=32, mode="area")
    net.train()
    for _ in tqdm(range(steps), desc="topic classifier (check)", unit="step"):
        idx = torch.randint(0, len(small), (128,), generator=g)
        x = small[idx]
        x = torch.where(torch.rand(len(x), 1, 1, 1, generator=g) < 0.5, x.flip(3), x)
        loss = F.cross_entropy(net(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: TopicClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (net(images).argmax(1) == labels).float().mean().item()


def conditional_accuracy(ema: Generator, data: torch.Tensor, labels: torch.Tensor, per_topic: int = 200) -> dict:
    """How often generated images of topic t are classified as t (and how good the classifier is)."""
    with torch.random.fork_rng():  # leave the training RNG stream (saved for --resume) untouched
        net = fit_classifier(data, labels)
    held = render(100, HELD_OUT_SEED, progress=False)  # (topics, 100, 64, 64, 3)
    held_x = to_unit(held.reshape(-1, *held.shape[2:]))
    held_y = torch.arange(len(TOPICS)).repeat_interleave(held.shape[1])
    topic_ids = np.repeat(np.arange(len(TOPICS)), per_topic)
    with torch.no_grad():
        pred = net(sample(ema, topic_ids, seed=HELD_OUT_SEED)).argmax(1).numpy()
    per = {t: round(float((pred[topic_ids == i] == i).mean()), 3) for i, t in enumerate(TOPICS)}
    return {"classifier_on_held_out_real": round(accuracy(net, held_x, held_y), 3),
            "generated_classified_as_their_topic": round(float((pred == topic_ids).mean()), 3),
            "per_topic": per, "generated_per_topic": per_topic}


def export(ema: Generator, out: Path, args: argparse.Namespace, state: dict, check: dict, frames: int) -> dict:
    path = export_onnx(ExportedGenerator(ema).eval(),
                       (torch.randn(2, args.z_dim), torch.zeros(2, dtype=torch.int64)), out / ONNX_NAME,
                       ["z", "topic"], ["image"], {"z": {0: "batch"}, "topic": {0: "batch"}, "image": {0: "batch"}})
    EMA_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"ema": ema.state_dict(), "config": {"z_dim": args.z_dim, "width": args.width, "topics": list(TOPICS)}},
               EMA_WEIGHTS)
    argv = [a for a in sys.argv if a != "--resume"]  # a resumed run reproduces the uninterrupted one
    saved, sys.argv = sys.argv, argv
    try:
        command = command_line("training.train_gan")
    finally:
        sys.argv = saved
    last = state["history"][-1] if state["history"] else {}
    return record(MODEL_NAME, path, VERSION, command, {
        "topics": list(TOPICS), "z_dim": args.z_dim, "size": 64, "width": args.width, "d_width": args.d_width,
        "inputs": {"z": ["batch", args.z_dim], "topic": ["batch"]}, "outputs": {"image": ["batch", 3, 64, 64]},
        "output_range": [0.0, 1.0], "output_layout": "NCHW RGB float32",
        "latents": "standard normal, services.generation.core.latent.latents(seed, count, z_dim)",
        "epochs": state["epoch"], "steps": state["step"], "batch": args.batch,
        "generator_parameters": parameter_count(ema), "discriminator_parameters": parameter_count(state["D"]),
        "final_losses": {k: last.get(k) for k in ("d", "g", "real", "fake", "ms")},
        "train_seconds": round(state["seconds"], 1), "conditional_accuracy": check, "seed": args.seed,
        "architecture": "DCGAN generator with conditional batch norm; spectral-norm projection discriminator; "
                        f"hinge loss + {args.mode_seeking} x mode-seeking term from epoch {args.mode_seeking_from}; "
                        f"Adam(lr {args.lr_g} G / {args.lr_d} D, betas {args.beta1}, {args.beta2}); "
                        f"EMA of G (decay {args.ema}), batch-norm statistics re-estimated before export",
        "data": f"{frames} frames ({frames // len(TOPICS)} per topic) of devkit.corpus clips, seed {args.data_seed}, "
                "128x72 at 12 fps, 2 random times per clip, centre-cropped to 72x72, INTER_AREA to 64x64",
    })


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--out", type=Path, default=MODELS_DIR / "generation")
    p.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    p.add_argument("--per-topic", type=int, default=1500, help="training frames per topic")
    p.add_argument("--data-seed", type=int, default=0, help="corpus seed of the training clips (< 9001)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--z-dim", type=int, default=64)
    p.add_argument("--width", type=int, default=32, help="generator width (channels at 32x32)")
    p.add_argument("--d-width", type=int, default=32, help="discriminator width (channels at 32x32)")
    p.add_argument("--lr-g", type=float, default=2e-4)
    p.add_argument("--lr-d", type=float, default=2e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--mode-seeking", type=float, default=1.0, help="weight of the mode-seeking term (0: off)")
    p.add_argument("--mode-seeking-from", type=int, default=2, help="first epoch (0-based) with that term")
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: all cores)")
    p.add_argument("--samples", type=Path, default=SAMPLES_DIR)
    args = p.parse_args(argv)
    if args.data_seed >= HELD_OUT_SEED:
        p.error(f"--data-seed must be below {HELD_OUT_SEED} (held out for evaluation)")
    if args.threads:
        torch.set_num_threads(args.threads)

    frames = frame_cache(args.per_topic, args.data_seed)
    data = torch.from_numpy(frames.reshape(-1, *frames.shape[2:])).permute(0, 3, 1, 2).contiguous()
    labels = torch.arange(len(TOPICS)).repeat_interleave(frames.shape[1])
    state = build(args)
    if args.resume and args.checkpoint.exists():
        load_checkpoint(state, args.checkpoint)
        print(f"resumed from {args.checkpoint} at epoch {state['epoch']}", file=sys.stderr)
    grid_topics = np.repeat(np.arange(len(TOPICS)), 8)
    save_grid(to_unit(frames[:, :: max(1, frames.shape[1] // 8)][:, :8].reshape(-1, 64, 64, 3)), 8,
              args.samples / "real.png")
    while state["epoch"] < args.epochs:
        started = time.time()
        losses = train_epoch(state, data, labels, args)
        state["epoch"] += 1
        state["seconds"] += time.time() - started
        state["history"].append({"epoch": state["epoch"], **losses, "seconds": round(state["seconds"], 1)})
        recalibrate_bn(state["ema"], args.z_dim, len(TOPICS))
        save_grid(sample(state["ema"], grid_topics, seed=0), 8, args.samples / f"epoch_{state['epoch']:03d}.png")
        save_checkpoint(state, args, args.checkpoint)
        print(f"epoch {state['epoch']}: {losses} ({state['seconds']:.0f} s)", file=sys.stderr)
    ema = state["ema"]
    recalibrate_bn(ema, args.z_dim, len(TOPICS))
    check = conditional_accuracy(ema, data, labels)
    print(f"conditional accuracy: {check}", file=sys.stderr)
    entry = export(ema, args.out, args, state, check, len(data))
    save_checkpoint(state, args, args.checkpoint)  # holds the re-estimated EMA statistics that were exported
    print(f"wrote {args.out / ONNX_NAME} ({entry['bytes']} bytes, sha256 {entry['sha256'][:16]}…); "
          f"{state['epoch']} epochs in {state['seconds']:.0f} s")


if __name__ == "__main__":
    main()
