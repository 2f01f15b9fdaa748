"""Encoder ingest (probe, decode, keyframes, embed, upsert) against a pure PyAV decode of the same real clips,
and the frame backbone's cost per keyframe.

    python -m benchmarks.encoder_ingest [--count 4] [--seconds 8] [--repeats 3]
    python -m benchmarks.encoder_ingest --clips DIR      # any folder of real videos, read in place
    python -m benchmarks.encoder_ingest --quick          # a smoke run: tiny clips, nothing written

Default clips are real photographs (scikit-image's, see ``devkit/photo_clips.py``) panned and zoomed
into H.264 MP4s at 640x360 and 1280x720, 30 fps, cached under ``--workdir``. With ``--clips DIR`` the
files are read where they lie (nothing is copied or re-encoded) and grouped by their shorter side.

Both sides decode every frame with FFmpeg's frame threads (thread_type AUTO); decode and ingest runs
alternate so that load from elsewhere hits both alike, and each side's median is kept. The ratio is
ingest wall time over decode wall time for the same files (goal <= 1.3 at 720p). Ingest is split
into analysis (probe, decode, keyframes) and the rest (backbone, text model, fusion, upsert).

Backbone rows: ms per keyframe on real keyframes of the clips, CPU at 1 and 2 onnxruntime threads,
batch 1 and 16, and a CUDA row when provider "auto" resolves to CUDA (skipped with a note otherwise).
Results: ``benchmarks/results/encoder_ingest.json`` (``encoder_ingest_clips.json`` for ``--clips``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from benchmarks.common import write_result
from services.encoder.engine import EncoderEngine
from shared.backbone import Backbone
from shared.progress import progress
from shared.settings import ModelSettings, Settings
from shared.text import video_text
from shared.vectors import EdgeVectorStore, VectorRecord

SIZES = {"360p": (640, 360), "720p": (1280, 720)}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".flv", ".mpg", ".mpeg", ".ts"}
GOAL = 1.3


def photo_clips(folder: Path, count: int, seconds: float, size: tuple[int, int]) -> list[Path]:
    """``count`` photo clips of ``size`` (width, height), 30 fps, made once and cached in ``folder``."""
    from devkit.photo_clips import PHOTOS, make_photo_clip

    names = list(PHOTOS)
    out = []
    for i in range(count):
        name = names[i % len(names)]
        path = folder / f"{name}_s{i}_{size[1]}p_{seconds:g}s.mp4"
        if not path.exists():
            tmp = path.with_suffix(".part.mp4")
            make_photo_clip(name, tmp, seconds=seconds, fps=30, size=size, seed=i)
            tmp.rename(path)
        out.append(path)
    return out


def bucket(width: int, height: int) -> str:
    short = min(width, height)
    return "<=360p" if short <= 360 else "480p-576p" if short <= 576 else "720p+"


def folder_clips(folder: Path) -> dict[str, list[Path]]:
    """The videos of ``folder`` grouped by their shorter side (files PyAV cannot open are left out)."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
        try:
            with av.open(str(path)) as c:
                s = c.streams.video[0]
                groups.setdefault(bucket(s.width, s.height), []).append(path)
        except (av.error.FFmpegError, IndexError):
            print(f"skipping {path.name}: no decodable video stream")
    order = ["<=360p", "480p-576p", "720p+"]
    return {k: groups[k] for k in order if k in groups}


def pure_decode(paths: list[Path]) -> int:
    frames = 0
    for p in paths:
        with av.open(str(p)) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            for _ in c.decode(stream):
                frames += 1
    return frames


def ingest(engine: EncoderEngine, store: EdgeVectorStore, paths: list[Path]) -> tuple[int, float]:
    """Returns frames decoded and the seconds spent in analysis (probe, decode, keyframes)."""
    pairs = engine.embed_files(paths, [video_text(p.stem, ["bench"]) for p in paths])
    store.upsert([VectorRecord(p.stem, e.vector.tolist(), {"topic": e.topic}) for p, (_, e) in zip(paths, pairs)])
    return sum(a.keyframes.frames_decoded for a, _ in pairs), sum(a.seconds["decode"] for a, _ in pairs)


def alternate(decode: Callable[[], int], run: Callable[[], tuple[int, float]], repeats: int, label: str) -> dict:
    """Decode and ingest runs in turn; medians of wall time, of this process's CPU time (all threads,
    steadier than wall time on a shared machine) and of ingest's analysis time."""
    wall: dict[str, list[float]] = {"decode": [], "ingest": []}
    cpu: dict[str, list[float]] = {"decode": [], "ingest": []}
    analysis, frames = [], {}
    for _ in progress(range(repeats), f"{label}: decode / ingest x{repeats}"):
        for side, fn in (("decode", decode), ("ingest", run)):
            t, c = time.perf_counter(), time.process_time()
            out = fn()
            wall[side].append(time.perf_counter() - t)
            cpu[side].append(time.process_time() - c)
            if side == "ingest":
                out, seconds = out
                analysis.append(seconds)
            frames[side] = out
    if frames["decode"] != frames["ingest"]:
        raise AssertionError(f"{label}: pure decode saw {frames['decode']} frames, ingest {frames['ingest']}")
    med = statistics.median
    return {"frames": frames["decode"], "decode_s": med(wall["decode"]), "ingest_s": med(wall["ingest"]),
            "analysis_s": med(analysis), "decode_cpu_s": med(cpu["decode"]), "ingest_cpu_s": med(cpu["ingest"])}


def backbone_rows(models: ModelSettings, keyframes: np.ndarray, repeats: int) -> tuple[list[dict], list[str]]:
    """ms per keyframe (wall and this process's CPU time) for each configuration; the configurations take
    turns within each repeat, so that load from elsewhere hits them alike; medians."""
    notes = []
    configs = [("cpu", t, b) for t in (1, 2) for b in (1, 16)]
    auto = Backbone(models.model_copy(update={"provider": "auto"}))
    if auto.provider == "CUDAExecutionProvider":
        configs += [("auto", 0, b) for b in (1, 16)]
    else:
        notes.append(f"CUDA row skipped: provider auto resolves to {auto.provider} here "
                     "(needs onnxruntime-gpu and a GPU that answers)")
    del auto
    backbones = [Backbone(models.model_copy(update={"provider": provider, "intra_op_threads": threads}), batch=batch)
                 for provider, threads, batch in configs]
    for b in backbones:
        b.frames(keyframes[: b.batch])  # warm-up
    wall: list[list[float]] = [[] for _ in configs]
    cpu: list[list[float]] = [[] for _ in configs]
    for _ in progress(range(repeats), f"backbone: {len(configs)} configurations on {len(keyframes)} keyframes"):
        for i, b in enumerate(backbones):
            t, c = time.perf_counter(), time.process_time()
            b.frames(keyframes)
            wall[i].append(time.perf_counter() - t)
            cpu[i].append(time.process_time() - c)
    rows = []
    for (_, threads, batch), b, w, c in zip(configs, backbones, wall, cpu):
        rows.append({"provider": b.provider, "threads": threads or None, "batch": batch, "keyframes": len(keyframes),
                     "ms_per_keyframe": round(1000.0 * statistics.median(w) / len(keyframes), 3),
                     "cpu_ms_per_keyframe": round(1000.0 * statistics.median(c) / len(keyframes), 3)})
    return rows, notes


def sample_keyframes(engine: EncoderEngine, paths: list[Path], want: int) -> np.ndarray:
    """Real keyframes of the clips (the engine's own extraction), repeated up to ``want``."""
    from services.encoder.core.pipeline import analyse

    frames = np.concatenate([analyse(p, engine.media).keyframes.frames for p in paths])
    return frames[np.arange(want) % len(frames)]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=Path, help="a folder of real videos to read in place (default: photo clips)")
    p.add_argument("--count", type=int, default=4, help="photo clips per resolution")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each photo clip")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--keyframes", type=int, default=64, help="keyframes timed per backbone row")
    p.add_argument("--workdir", type=Path, default=Path("var/bench/encoder"))
    p.add_argument("--quick", action="store_true", help="smoke run: 2 short clips per resolution, one repeat, "
                                                      "no result file")
    args = p.parse_args(argv)
    if args.quick:
        args.count, args.seconds, args.repeats, args.keyframes = 2, 1.0, 1, 16
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)
    settings = Settings()
    engine = EncoderEngine(settings.models, settings.encoder, settings.media)
    engine.warmup()
    if args.clips is not None:
        groups = folder_clips(args.clips)
        if not groups:
            raise SystemExit(f"no videos in {args.clips}")
        source = f"{sum(map(len, groups.values()))} videos from {args.clips}, read in place"
    else:
        groups = {}
        for label, size in SIZES.items():
            with console.status(f"making {args.count} photo clips at {label} (cached in {args.workdir})"):
                groups[label] = photo_clips(args.workdir / "photo", args.count, args.seconds, size)
        source = (f"{args.count} photo clips (devkit/photo_clips, scikit-image photographs) of {args.seconds:g} s "
                  "at 30 fps per resolution")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeVectorStore(Path(tmp) / "videos", engine.space.video_dim)
        try:
            for label, paths in groups.items():
                pure_decode(paths)  # warm the page cache
                ingest(engine, store, paths)  # and the models on these sizes
                m = alternate(lambda ps=paths: pure_decode(ps), lambda ps=paths: ingest(engine, store, ps),
                              args.repeats, label)
                frames = m["frames"]
                rows.append({"resolution": label, "clips": len(paths), "frames": frames,
                             **{k: round(v, 4) for k, v in m.items() if k != "frames"},
                             "embed_upsert_s": round(m["ingest_s"] - m["analysis_s"], 4),
                             "decode_fps": round(frames / m["decode_s"], 1), "ingest_fps": round(frames / m["ingest_s"], 1),
                             "ratio": round(m["ingest_s"] / m["decode_s"], 3),
                             "cpu_ratio": round(m["ingest_cpu_s"] / m["decode_cpu_s"], 3)})
        finally:
            store.close()
    keyframes = sample_keyframes(engine, [p for paths in groups.values() for p in paths], args.keyframes)
    brepeats = args.repeats if args.quick else max(args.repeats, 5)
    brows, notes = backbone_rows(settings.models, keyframes, brepeats)

    table = Table(title=f"encoder ingest vs pure PyAV decode ({source}; same files, same run, runs alternating, "
                        f"median of {args.repeats})")
    for col in ("resolution", "clips", "frames", "decode fps", "ingest fps", "ingest/decode", "CPU-time ratio",
                "decode s", "ingest s: analysis", "+ embed, upsert"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["resolution"], str(r["clips"]), str(r["frames"]), f"{r['decode_fps']:,.0f}",
                      f"{r['ingest_fps']:,.0f}", f"{r['ratio']:.2f}x", f"{r['cpu_ratio']:.2f}x", f"{r['decode_s']:.3f}",
                      f"{r['analysis_s']:.3f}", f"{r['embed_upsert_s']:.3f}")
    console.print(table)
    btable = Table(title=f"backbone {engine.backbone.version}: ms per keyframe ({len(keyframes)} real keyframes, "
                         f"configurations in turn, median of {brepeats})")
    for col in ("provider", "threads", "batch", "ms / keyframe", "CPU ms / keyframe"):
        btable.add_column(col)
    for r in brows:
        btable.add_row(r["provider"], str(r["threads"] or "-"), str(r["batch"]), f"{r['ms_per_keyframe']:.2f}",
                       f"{r['cpu_ms_per_keyframe']:.2f}")
    console.print(btable)
    for note in notes:
        console.print(note)
    result = {"source": source, "rows": rows, "backbone": brows, "notes": notes, "model_version": engine.version,
              "goal_ratio": GOAL, "provider": engine.backbone.provider, "repeats": args.repeats, "backbone_repeats": brepeats,
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    over = [r["resolution"] for r in rows if r["resolution"] in ("720p", "720p+") and r["ratio"] > GOAL]
    if over:
        console.print(f"[bold]above the {GOAL}x goal at {', '.join(over)}[/bold]")
    if args.quick:
        console.print("--quick: no result file written")
    else:
        path = write_result("encoder_ingest_clips" if args.clips is not None else "encoder_ingest", result)
        console.print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
