"""``clipstream eval encoder``: text search, same-class neighbours and copy detection on labelled clips.

Clips come with a labels CSV (columns file, class, description; others are ignored). Titles are left
blank, so only the pictures count. Without ``--clips``, the clips made from scikit-image's photographs
are used (``devkit/photo_clips.py``: class = the photo's name, description = its query).

Metrics per system, over all clips:

* text-to-video recall@1 and @5: each clip's description is a query, turned into a vector by
  ``shared.search.QueryEncoder`` (the path the recommender's /v1/search uses) and searched in an
  ``EdgeVectorStore`` holding every clip's search vector. As in the encoder service, a clip whose
  search vector is zero is not stored; a query with no content word (no vector) is a miss.
* same-class nearest neighbour: the nearest other clip by the system's video vector has the same
  class; counted over the clips whose class has at least two clips.
* copy detection recall@1: every clip is transformed six ways (re-encoded at low quality, rescaled to
  half size, cropped by 10%, colour-jittered, trimmed by 20%, given black bars); each copy queries the
  gallery of all originals and counts when its own original comes first.
* ms per keyframe: the time of the embedding call alone (decoding excluded) over the keyframes it
  embedded, originals and copies together. For clipstream that call is the backbone plus the text
  model (blank titles) and the concept mapping.

Systems, in the same run: "clipstream" (``services/encoder/engine.py``: the fused vector for
neighbours and copies, the search vector for text), "video-encoder-1" (the checked-in model's
embedding of 64 px letterboxed keyframes; no text path) and "colour-histogram" (an HSV histogram of
the same 64 px keyframes; no text path).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from devkit.corpus import write_video
from shared.progress import progress

TEXT_KS = (1, 5)
LABEL_COLUMNS = ("file", "class", "description")
BATCH = 16
"""Clips decoded and embedded per model call."""
CHUNK = 32
"""Frames transformed at a time: a long HD clip as float32 would not fit in memory."""
WHOLE_CLIP = frozenset({"trim20"})
"""Transforms that need the whole clip; the others act frame by frame."""

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



# --------------------------------------------------------------------------- clips and labels


@dataclass(frozen=True)
class Clip:
    file: str  # as the labels name it; the clip's id
    path: Path
    cls: str
    description: str


class LabelError(ValueError):
    """The labels CSV cannot be used."""


def parse_labels(text: str, clips_dir: Path, source: str = "labels") -> list[Clip]:
    """Rows of a file,class,description CSV (extra columns ignored) as clips under ``clips_dir``."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in LABEL_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise LabelError(f"{source}: missing column(s) {', '.join(missing)}; needs {','.join(LABEL_COLUMNS)}")
    clips: list[Clip] = []
    for row in reader:
        file, cls, description = ((row.get(c) or "").strip() for c in LABEL_COLUMNS)
        where = f"{source} line {reader.line_num}"
        if not file or not cls:
            raise LabelError(f"{where}: file and class must not be empty")
        if any(c.file == file for c in clips):
            raise LabelError(f"{where}: {file} is listed twice")
        if not (clips_dir / file).is_file():
            raise LabelError(f"{where}: {file} not found in {clips_dir}")
        clips.append(Clip(file, clips_dir / file, cls, description))
    if not clips:
        raise LabelError(f"{source}: no clips listed")
    return clips


def read_labels(clips_dir: Path, labels: Path) -> list[Clip]:
    if not labels.is_file():
        raise LabelError(f"{labels} not found")
    if not clips_dir.is_dir():
        raise LabelError(f"{clips_dir} is not a folder")
    return parse_labels(labels.read_text(encoding="utf-8-sig"), clips_dir, str(labels))


def photo_clips(folder: Path, names: Sequence[str] | None = None) -> list[Clip]:
    """The clips made from scikit-image's photographs (deterministic; written again each run)."""
    from devkit.photo_clips import PHOTOS, make_photo_clips

    made = make_photo_clips(folder, names)
    return [Clip(path.name, path, name, PHOTOS[name].query) for name, path in made.items()]


def clips_digest(paths: Sequence[Path]) -> str:
    """Names and contents of the clips: transformed copies are cached under it."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------- transformed copies


def read_frames(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        fps = round(float(stream.average_rate or 24))
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(stream)]), fps


def transformed(name: str, frames: np.ndarray, seed: Sequence[int]) -> Iterator[np.ndarray]:
    """The frames of one copy, a chunk at a time; every chunk draws the same random parameters."""
    fn = TRANSFORMS[name]
    if name in WHOLE_CLIP:
        yield from fn(frames, np.random.default_rng(seed))
        return
    for start in range(0, len(frames), CHUNK):
        yield from fn(frames[start:start + CHUNK], np.random.default_rng(seed))


def write_copy(dest: Path, frames: Iterator[np.ndarray], fps: int, crf: int) -> None:
    first = next(frames)
    h, w = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2  # H.264 wants even sizes
    write_video(dest, (f[:h, :w] for f in itertools.chain([first], frames)), fps, w, h, crf=crf)


def make_copies(originals: list[Path], out: Path, seed: int = 0) -> list[tuple[Path, int, str]]:
    """(copy file, index of its original, transform) for every original and transform."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, src in enumerate(progress(originals, "making transformed copies")):
        frames = None
        for t, name in enumerate(TRANSFORMS):
            dest = out / f"{src.stem}.{name}.mp4"
            if not dest.exists():
                if frames is None:
                    frames, fps = read_frames(src)
                part = dest.with_suffix(".part.mp4")
                write_copy(part, transformed(name, frames, [seed, i, t]), fps, 38 if name == "reencode" else 23)
                part.rename(dest)
            rows.append((dest, i, name))
    return rows


# --------------------------------------------------------------------------- metrics (pure)


def share(count: int, of: int) -> dict:
    return {"count": int(count), "of": int(of), "share": round(count / of, 4) if of else None}


def rank_of(ids: Sequence[str], target: str) -> int | None:
    """1-based rank of ``target`` among search results, None when it is not among them."""
    return ids.index(target) + 1 if target in ids else None


def recall_at(ranks: Sequence[int | None], k: int) -> dict:
    return share(sum(1 for r in ranks if r is not None and r <= k), len(ranks))


def nearest_other(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the index and cosine of the nearest other row (-1 and nan when there is none)."""
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    idx = np.argmax(sims, axis=1) if len(vectors) > 1 else np.full(len(vectors), -1)
    score = sims[np.arange(len(vectors)), idx] if len(vectors) > 1 else np.full(len(vectors), np.nan)
    return idx, score


def repeating(classes: Sequence[str]) -> np.ndarray:
    """(N,) bool: the clip's class has at least one other clip."""
    counts: dict[str, int] = {}
    for c in classes:
        counts[c] = counts.get(c, 0) + 1
    return np.array([counts[c] > 1 for c in classes], bool)


def same_class_nn(nearest: np.ndarray, classes: Sequence[str]) -> dict:
    """Clips of a repeating class whose nearest other clip has the same class."""
    eligible = np.flatnonzero(repeating(classes))
    return share(sum(classes[nearest[i]] == classes[i] for i in eligible), len(eligible))


def copy_recall(copies: np.ndarray, gallery: np.ndarray, truth: np.ndarray, kinds: Sequence[str]) -> dict:
    """Recall@1 of each copy's original among the gallery, overall and per transform."""
    found = np.argmax(copies @ gallery.T, axis=1) == truth
    kinds = np.asarray(kinds)
    return {"copy_recall@1": share(found.sum(), len(found)),
            "copy_recall@1_by_transform": {t: share(found[kinds == t].sum(), (kinds == t).sum())
                                           for t in dict.fromkeys(kinds.tolist())}}


@dataclass
class Timing:
    keyframes: int = 0
    seconds: float = 0.0

    def add(self, keyframes: int, seconds: float) -> None:
        self.keyframes += keyframes
        self.seconds += seconds

    @property
    def ms_per_keyframe(self) -> float | None:
        return round(1000 * self.seconds / self.keyframes, 3) if self.keyframes else None


def system_metrics(originals: np.ndarray, copies: np.ndarray, copy_rows: Sequence[tuple[Path, int, str]],
                   classes: Sequence[str], ranks: Sequence[int | None] | None, timing: Timing) -> dict:
    """One system's metrics; ``ranks`` None: the system has no text path."""
    out: dict = {f"text_recall@{k}": None if ranks is None else recall_at(ranks, k) for k in TEXT_KS}
    out["same_class_nn"] = same_class_nn(nearest_other(originals)[0], classes)
    truth = np.array([r[1] for r in copy_rows])
    out.update(copy_recall(copies, originals, truth, [r[2] for r in copy_rows]))
    out["ms_per_keyframe"] = timing.ms_per_keyframe
    out["keyframes"] = timing.keyframes
    return out


def clip_details(clips: Sequence[Clip], embedded: Sequence, ranks: Sequence[int | None]) -> list[dict]:
    """Per clip, for clipstream: its rank for its own query, nearest neighbour, topic and concepts."""
    idx, score = nearest_other(np.stack([e.vector for e in embedded]))
    rows = []
    for i, (clip, e) in enumerate(zip(clips, embedded)):
        nearest = None if idx[i] < 0 else {"file": clips[idx[i]].file, "class": clips[idx[i]].cls,
                                           "score": round(float(score[i]), 4)}
        rows.append({"file": clip.file, "class": clip.cls, "description": clip.description, "query_rank": ranks[i],
                     "nearest": nearest, "topic": e.topic, "topic_score": e.topic_score,
                     "concepts": [[name, p] for name, p in e.concepts]})
    return rows


# --------------------------------------------------------------------------- embedding and search (I/O)


def colour_histogram(frames: np.ndarray, bins: int = 8) -> np.ndarray:
    """Baseline: HSV histogram over the keyframes, square-rooted and L2-normalised."""
    hist = np.zeros(bins ** 3, np.float32)
    for f in frames:
        hsv = cv2.cvtColor(f, cv2.COLOR_RGB2HSV)
        mask = (f.max(axis=2) > 0).astype(np.uint8)  # ignore letterbox padding
        hist += cv2.calcHist([hsv], [0, 1, 2], mask, [bins] * 3, [0, 180, 0, 256, 0, 256]).reshape(-1)
    v = np.sqrt(hist / max(hist.sum(), 1))
    return v / (np.linalg.norm(v) + 1e-12)



def batches(items: Sequence, size: int = BATCH) -> list[Sequence]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def embed_clipstream(engine, paths: Sequence[Path], timing: Timing, label: str) -> list:
    """The engine's Embedded per clip (blank titles): the service's path, timed without decoding."""
    from services.encoder.core.pipeline import analyse

    out = []
    for chunk in progress(batches(paths), f"clipstream: embedding {len(paths)} {label}"):
        frames = [analyse(p, engine.media).keyframes.frames for p in chunk]
        t0 = time.perf_counter()
        out += engine.embed_batch([(f, "") for f in frames])
        timing.add(sum(map(len, frames)), time.perf_counter() - t0)
    return out


def embed_baselines(legacy, paths: Sequence[Path], timings: dict[str, Timing], label: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    """video-encoder-1 embeddings and colour histograms of the same 64 px keyframes."""
    vectors, hists = [], []
    for chunk in progress(batches(paths), f"baselines: embedding {len(paths)} {label}"):
        frames = [legacy.keyframes(p) for p in chunk]
        n = sum(map(len, frames))
        t0 = time.perf_counter()
        vectors.append(legacy.embed(frames))
        t1 = time.perf_counter()
        hists += [colour_histogram(f) for f in frames]
        timings["video-encoder-1"].add(n, t1 - t0)
        timings["colour-histogram"].add(n, time.perf_counter() - t1)
    return np.concatenate(vectors), np.stack(hists)


def text_ranks(ids: Sequence[str], search: np.ndarray, queries: Sequence[np.ndarray | None]) -> list[int | None]:
    """Rank of each clip for its own query, searching an embedded store of the clips' search vectors."""
    from shared.vectors import EdgeVectorStore, VectorRecord

    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeVectorStore(Path(tmp) / "search", search.shape[1])
        try:
            store.upsert([VectorRecord(i, v.tolist()) for i, v in zip(ids, search) if v.any()])
            return [None if q is None else
                    rank_of([h.id for h in store.search(q, len(ids), exact=True, with_payload=False)], i)
                    for i, q in zip(ids, queries)]
        finally:
            store.close()


# --------------------------------------------------------------------------- the run


def evaluate(clips: Sequence[Clip], workdir: Path) -> dict:
    from evaluation.legacy_encoder import LegacyEncoder
    from services.encoder.engine import EncoderEngine
    from shared.search import QueryEncoder
    from shared.settings import Settings

    settings = Settings()
    engine = EncoderEngine(settings.models, settings.encoder, settings.media)
    legacy = LegacyEncoder(settings.models, settings.media)
    queries = QueryEncoder(settings.models, settings.encoder, text=engine.text)
    engine.warmup()
    legacy.warmup()
    paths = [c.path for c in clips]
    copy_rows = make_copies(paths, workdir / "copies" / clips_digest(paths))
    copy_paths = [r[0] for r in copy_rows]
    timings = {name: Timing() for name in ("clipstream", "video-encoder-1", "colour-histogram")}
    originals = embed_clipstream(engine, paths, timings["clipstream"], "clips")
    copies = embed_clipstream(engine, copy_paths, timings["clipstream"], "copies")
    legacy_o, hist_o = embed_baselines(legacy, paths, timings, "clips")
    legacy_c, hist_c = embed_baselines(legacy, copy_paths, timings, "copies")
    ids = [c.file for c in clips]
    ranks = text_ranks(ids, np.stack([e.search for e in originals]), queries.vectors([c.description for c in clips]))
    classes = [c.cls for c in clips]
    vectors = {"clipstream": (np.stack([e.vector for e in originals]), np.stack([e.vector for e in copies]), ranks),
               "video-encoder-1": (legacy_o, legacy_c, None), "colour-histogram": (hist_o, hist_c, None)}
    return {"systems": {name: system_metrics(o, c, copy_rows, classes, r, timings[name])
                        for name, (o, c, r) in vectors.items()},
            "clips": len(clips), "repeating_classes_clips": int(repeating(classes).sum()),
            "copies": len(copy_rows), "transforms": list(TRANSFORMS),
            "model_version": engine.version, "baseline_version": legacy.version,
            "provider": engine.backbone.provider,
            "timing": "ms per keyframe: the embedding call alone (decoding excluded) over all keyframes embedded, "
                      "originals and copies",
            "details": clip_details(clips, originals, ranks)}


def resolve_clips(clips: str | None, labels: str | None, workdir: Path) -> list[Clip]:
    """--clips and --labels (either may be inferred from the other), else the photo clips."""
    if clips is None and labels is None:
        return photo_clips(workdir / "photo_clips")
    labels_path = Path(labels) if labels else Path(clips) / "labels.csv"
    return read_labels(Path(clips) if clips else labels_path.parent, labels_path)


# --------------------------------------------------------------------------- output


def cell(metric: dict | float | None) -> str:
    if metric is None:
        return "n/a"
    if isinstance(metric, dict):
        value = "-" if metric["share"] is None else f"{metric['share']:.3f}"
        return f"{value} ({metric['count']}/{metric['of']})"
    return f"{metric:.2f}"


def table_rows(result: dict) -> list[tuple[str, list[str]]]:
    systems = list(result["systems"].values())
    rows = [(f"text recall@{k}", [cell(s[f"text_recall@{k}"]) for s in systems]) for k in TEXT_KS]
    rows.append(("same-class NN", [cell(s["same_class_nn"]) for s in systems]))
    rows.append(("copy recall@1", [cell(s["copy_recall@1"]) for s in systems]))
    rows += [(f"  {t}", [cell(s["copy_recall@1_by_transform"][t]) for s in systems]) for t in result["transforms"]]
    rows.append(("ms / keyframe", [cell(s["ms_per_keyframe"]) for s in systems]))
    return rows


def print_tables(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"encoder: {result['clips']} clips ({result['repeating_classes_clips']} in repeating "
                        f"classes), {result['copies']} copies; {result['model_version']}")
    table.add_column("metric")
    for name in result["systems"]:
        table.add_column(name, justify="right")
    for name, cells in table_rows(result):
        table.add_row(name, *cells)
    clips = Table(title="clipstream per clip")
    for col in ("file", "class", "rank", "nearest", "topic", "concepts"):
        clips.add_column(col)
    for d in result["details"]:
        nearest = d["nearest"] and f"{d['nearest']['file']} ({d['nearest']['class']}, {d['nearest']['score']:.2f})"
        clips.add_row(d["file"], d["class"], str(d["query_rank"] or "-"), nearest or "-", str(d["topic"]),
                      ", ".join(name for name, _ in d["concepts"]))
    console = Console()
    console.print(table)
    console.print(clips)
    console.print(result["timing"])


def run_eval(clips: str | None, labels: str | None, workdir: str, as_json: bool) -> int:
    work = Path(workdir)
    try:
        chosen = resolve_clips(clips, labels, work)
    except LabelError as exc:
        print(f"eval encoder: {exc}", file=sys.stderr)
        return 2
    result = evaluate(chosen, work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "encoder.json").write_text(json.dumps(result, indent=2))
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print_tables(result)
    return 0
