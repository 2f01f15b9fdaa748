"""``clipstream eval encoder``: copy detection and topic kNN on held-out clips and transformed copies.

Held-out clips (a corpus seed never trained on) are each transformed six ways: re-encoded at
low quality, rescaled to half size, cropped by 10%, colour-jittered, trimmed by 20%, and given
black bars. Copy detection: each copy queries a gallery of the originals plus the training
corpus as distractors; recall@1 counts the original found first. Topic kNN: held-out originals
are labelled by their 5 nearest training clips. Systems, in the same run: the trained model
(visual part of the vector, titles withheld so text cannot give copies away) and a colour
histogram baseline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from devkit.corpus import TOPICS, make_corpus, write_video

TRANSFORMS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {}


def transform(name: str):
    def register(fn):
        TRANSFORMS[name] = fn
        return fn
    return register


def _even(n: float) -> int:
    return max(2, int(n) // 2 * 2)


@transform("reencode")
def _reencode(frames: np.ndarray, rng) -> np.ndarray:
    return frames  # the low-quality encode happens when written (crf 38)


@transform("rescale")
def _rescale(frames: np.ndarray, rng) -> np.ndarray:
    h, w = frames.shape[1:3]
    return np.stack([cv2.resize(f, (_even(w / 2), _even(h / 2)), interpolation=cv2.INTER_AREA) for f in frames])


@transform("crop10")
def _crop(frames: np.ndarray, rng) -> np.ndarray:
    h, w = frames.shape[1:3]
    dh, dw = int(h * 0.05), int(w * 0.05)
    out = frames[:, dh:h - dh, dw:w - dw]
    return out[:, : _even(out.shape[1]), : _even(out.shape[2])]


@transform("colour")
def _colour(frames: np.ndarray, rng) -> np.ndarray:
    f = frames.astype(np.float32) / 255
    f = f * rng.uniform(0.8, 1.2)
    grey = f.mean(axis=3, keepdims=True)
    f = (f - grey) * rng.uniform(0.7, 1.3) + grey + rng.uniform(-0.05, 0.05, 3)
    return (f.clip(0, 1) * 255).astype(np.uint8)


@transform("trim20")
def _trim(frames: np.ndarray, rng) -> np.ndarray:
    n = len(frames)
    start = int(rng.integers(0, int(n * 0.2) + 1))
    return frames[start:start + int(n * 0.8)]


@transform("black_bars")
def _bars(frames: np.ndarray, rng) -> np.ndarray:
    h, w = frames.shape[1:3]
    bar = _even(h * 0.12) // 2 * 2
    inner = np.stack([cv2.resize(f, (w, h - 2 * bar), interpolation=cv2.INTER_AREA) for f in frames])
    out = np.zeros_like(frames)
    out[:, bar:h - bar] = inner
    return out


def read_frames(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        fps = int(round(float(stream.average_rate or 24)))
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(stream)]), fps


def make_copies(originals: list[Path], out: Path, seed: int = 0) -> list[tuple[Path, int, str]]:
    """(copy file, index of its original, transform) for every original and transform."""
    from shared.progress import progress

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, src in enumerate(progress(originals, "making transformed copies")):
        frames = None
        for name, fn in TRANSFORMS.items():
            dest = out / f"{src.stem}.{name}.mp4"
            if not dest.exists():
                if frames is None:
                    frames, fps = read_frames(src)
                rng = np.random.default_rng([seed, i, list(TRANSFORMS).index(name)])
                t = fn(frames, rng)
                write_video(dest, t, fps, t.shape[2], t.shape[1], crf=38 if name == "reencode" else 23)
            rows.append((dest, i, name))
    return rows


def colour_histogram(frames: np.ndarray, bins: int = 8) -> np.ndarray:
    """Baseline: HSV histogram over the keyframes, square-rooted and L2-normalised."""
    hist = np.zeros(bins ** 3, np.float32)
    for f in frames:
        hsv = cv2.cvtColor(f, cv2.COLOR_RGB2HSV)
        mask = (f.max(axis=2) > 0).astype(np.uint8)  # ignore letterbox padding
        hist += cv2.calcHist([hsv], [0, 1, 2], mask, [bins] * 3, [0, 180, 0, 256, 0, 256]).reshape(-1)
    v = np.sqrt(hist / max(hist.sum(), 1))
    return v / (np.linalg.norm(v) + 1e-12)


def recall_at_1(queries: np.ndarray, gallery: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.argmax(queries @ gallery.T, axis=1) == truth))


def knn_accuracy(queries: np.ndarray, labels_q: np.ndarray, refs: np.ndarray, labels_r: np.ndarray, k: int = 5) -> float:
    sims = queries @ refs.T
    top = np.argsort(-sims, axis=1)[:, :k]
    votes = np.array([np.bincount(labels_r[row], minlength=len(TOPICS)).argmax() for row in top])
    return float(np.mean(votes == labels_q))


def evaluate(workdir: Path, heldout: int = 60, train_clips: int = 600) -> dict:
    from services.encoder.engine import EncoderEngine
    from shared.settings import Settings

    settings = Settings()
    engine = EncoderEngine(settings.models, settings.encoder, settings.media)
    train_rows = make_corpus(workdir / "train", train_clips, seed=0)
    held_rows = make_corpus(workdir / "heldout", heldout, seed=1)
    held_paths = [workdir / "heldout" / r["file"] for r in held_rows]
    copies = make_copies(held_paths, workdir / "copies")

    def features(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        from shared.progress import progress

        visual, hist = [], []
        for start in progress(range(0, len(paths), 16), f"embedding {len(paths)} clips"):
            chunk = paths[start:start + 16]
            for analysis, embedded in engine.embed_files(chunk, [""] * len(chunk)):
                visual.append(embedded.visual)
                hist.append(colour_histogram(analysis.keyframes.frames))
        return np.stack(visual), np.stack(hist)

    train_v, train_h = features([workdir / "train" / r["file"] for r in train_rows])
    held_v, held_h = features(held_paths)
    copy_v, copy_h = features([c[0] for c in copies])
    truth = np.array([c[1] for c in copies]) + len(train_rows)  # gallery: training clips, then originals
    labels_train = np.array([TOPICS.index(r["topic"]) for r in train_rows])
    labels_held = np.array([TOPICS.index(r["topic"]) for r in held_rows])
    systems = {}
    for name, (tr, he, co) in {"video-encoder": (train_v, held_v, copy_v),
                               "colour-histogram": (train_h, held_h, copy_h)}.items():
        gallery = np.concatenate([tr, he])
        per_transform = {}
        for t in TRANSFORMS:
            rows = [i for i, c in enumerate(copies) if c[2] == t]
            per_transform[f"recall@1_{t}"] = round(recall_at_1(co[rows], gallery, truth[rows]), 4)
        labels_copies = labels_held[[c[1] for c in copies]]
        systems[name] = {"copy_recall@1": round(recall_at_1(co, gallery, truth), 4),
                         "topic_knn_accuracy": round(knn_accuracy(he, labels_held, tr, labels_train), 4),
                         "topic_knn_accuracy_copies": round(knn_accuracy(co, labels_copies, tr, labels_train), 4),
                         **per_transform}
    return {"model_version": engine.version, "heldout_clips": len(held_rows), "copies": len(copies),
            "gallery": len(train_rows) + len(held_rows), "transforms": list(TRANSFORMS), "systems": systems}


def run_eval(workdir: str, heldout: int, as_json: bool, train_clips: int = 600) -> int:
    result = evaluate(Path(workdir), heldout, train_clips)
    (Path(workdir) / "encoder.json").write_text(json.dumps(result, indent=2))
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"encoder: {result['copies']} copies of {result['heldout_clips']} held-out clips, "
                        f"gallery of {result['gallery']}")
    metrics = list(next(iter(result["systems"].values())))
    table.add_column("metric")
    for name in result["systems"]:
        table.add_column(name)
    for m in metrics:
        table.add_row(m, *(f"{result['systems'][s][m]:.3f}" for s in result["systems"]))
    Console().print(table)
    return 0
