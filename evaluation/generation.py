"""``clipstream eval generation``: the trained generator against an untrained one, on the encoder's features.

Every image (generated or real) goes through the project's video encoder as a one-frame clip;
its embedding is the feature. Real frames are prepared exactly as the GAN's training frames
(centre crop, 64x64), from held-out clips (seeds never used in training). Per system:

- ``conditional_accuracy``: how often a 5-nearest-neighbour topic classifier on the embeddings of
  real frames (a reference set of its own seed) names the requested topic;
- ``topic_head_accuracy``: the same with the encoder's own topic head;
- ``diversity``: mean pairwise cosine distance of embeddings within a topic, and its ratio to
  real frames' (``diversity_vs_real``; far below 1 means mode collapse);
- ``frechet_distance``: between Gaussians fitted to generated and held-out real embeddings.

The untrained system is the same architecture with its initial weights (torch, seeded). Writes a
grid PNG per topic. ``--json`` prints ``{"topics": [...], "systems": {name: {metric: value}}}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from evaluation.legacy_encoder import VideoEncoderModel
from services.generation.core.generator import load_generator
from services.generation.core.latent import latents
from shared.settings import Settings

PER_TOPIC = 120
REFERENCE_SEED, HELD_OUT_SEED, LATENT_SEED = 5_000, 9_001, 12_345


def features(encoder: VideoEncoderModel, images: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(N, 64, 64, 3) uint8 -> L2-normalised embeddings (N, D) and topic probabilities (N, T)."""
    embs, probs = [], []
    for s in range(0, len(images), batch):
        e, p = encoder.embed([img[None] for img in images[s:s + batch]])
        embs.append(e)
        probs.append(p)
    e = np.concatenate(embs)
    return e / (np.linalg.norm(e, axis=1, keepdims=True) + 1e-12), np.concatenate(probs)


def knn_accuracy(reference: np.ndarray, ref_labels: np.ndarray, queries: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    sims = queries @ reference.T
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    votes = ref_labels[top]
    predicted = np.array([np.bincount(v, minlength=ref_labels.max() + 1).argmax() for v in votes])
    return float((predicted == labels).mean())


def diversity(embs: np.ndarray, labels: np.ndarray) -> float:
    out = []
    for t in np.unique(labels):
        e = embs[labels == t]
        sims = e @ e.T
        n = len(e)
        out.append(float((1 - sims)[~np.eye(n, dtype=bool)].mean()))
    return float(np.mean(out))


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(ca)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    eig = np.linalg.eigvals(root_a @ cb @ root_a)
    trace_sqrt = float(np.sqrt(np.clip(eig.real, 0, None)).sum())
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * trace_sqrt)


def untrained_images(topics: int, z: np.ndarray, labels: np.ndarray, z_dim: int, width: int) -> np.ndarray:
    import torch

    from training.gan import Generator

    torch.manual_seed(0)
    g = Generator(z_dim=z_dim, topics=topics, width=width).eval()
    with torch.no_grad():
        x = g(torch.from_numpy(z), torch.from_numpy(labels.astype(np.int64)))
    x = x.numpy().transpose(0, 2, 3, 1)
    x = (x + 1) / 2 if x.min() < 0 else x
    return (x.clip(0, 1) * 255 + 0.5).astype(np.uint8)


def evaluate(per_topic: int = PER_TOPIC) -> tuple[list[str], dict[str, dict[str, float]], dict[str, np.ndarray]]:
    from training.gan_data import render

    models = Settings().models
    gen = load_generator(models)
    encoder = VideoEncoderModel(models)
    topics = list(gen.topics)
    labels = np.repeat(np.arange(len(topics)), per_topic)
    with Console(stderr=True).status("rendering real frames (reference and held-out clips)"):
        reference = render(per_topic, REFERENCE_SEED, progress=False).reshape(-1, 64, 64, 3)
        real = render(per_topic, HELD_OUT_SEED, progress=False).reshape(-1, 64, 64, 3)
    ref_emb, _ = features(encoder, reference)
    real_emb, real_probs = features(encoder, real)
    z = latents(LATENT_SEED, len(labels), gen.z_dim)
    sets = {"trained": gen.generate(labels.astype(np.int64), z),
            "untrained": untrained_images(len(topics), z, labels, gen.z_dim, int(gen.card.meta.get("width", 32)))}
    real_div = diversity(real_emb, labels)
    systems: dict[str, dict[str, float]] = {"real frames (held out)": {
        "conditional_accuracy": knn_accuracy(ref_emb, labels, real_emb, labels),
        "topic_head_accuracy": float((real_probs.argmax(1) == labels).mean()),
        "diversity": real_div, "diversity_vs_real": 1.0}}
    for name, imgs in sets.items():
        emb, probs = features(encoder, imgs)
        div = diversity(emb, labels)
        systems[name] = {"conditional_accuracy": knn_accuracy(ref_emb, labels, emb, labels),
                         "topic_head_accuracy": float((probs.argmax(1) == labels).mean()),
                         "diversity": div, "diversity_vs_real": div / real_div,
                         "frechet_distance": frechet(emb, real_emb)}
    samples = {"real": real, **sets}
    return topics, systems, {k: v.reshape(len(topics), per_topic, 64, 64, 3) for k, v in samples.items()}


def write_grids(topics: list[str], samples: dict[str, np.ndarray], folder: Path, per_row: int = 8) -> list[Path]:
    """One PNG per topic: rows real / trained / untrained, ``per_row`` images each, shown at 2x."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, topic in enumerate(topics):
        rows = [np.concatenate(list(imgs[t, :per_row]), axis=1) for imgs in samples.values()]
        grid = cv2.resize(np.concatenate(rows, axis=0), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        path = folder / f"generation_{topic}.png"
        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def run_eval(workdir: str, as_json: bool, per_topic: int = PER_TOPIC) -> int:
    topics, systems, samples = evaluate(per_topic)
    grids = write_grids(topics, samples, Path(workdir))
    if as_json:
        print(json.dumps({"topics": topics, "systems": {n: {k: round(v, 4) for k, v in m.items()}
                                                         for n, m in systems.items()},
                          "grids": [str(p) for p in grids]}))
        return 0
    metrics = ["conditional_accuracy", "topic_head_accuracy", "diversity", "diversity_vs_real", "frechet_distance"]
    headers = ["kNN topic accuracy", "topic-head accuracy", "diversity", "diversity / real", "Fréchet distance"]
    table = Table("system", *headers, title=f"generation: {len(topics)} topics x {per_topic} images (encoder features)")
    for name, m in systems.items():
        table.add_row(name, *[f"{m[k]:.3f}" if k in m else "-" for k in metrics])
    console = Console(width=max(Console().width, 120))
    console.print(table)
    console.print(f"grids (rows: real, trained, untrained): {grids[0].parent}")
    return 0
