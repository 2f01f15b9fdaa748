"""Encoder ingest (decode + keyframes + embed + upsert) against a pure PyAV decode of the same files.

    python -m benchmarks.encoder_ingest [--clips 4] [--seconds 8] [--repeats 3]

Both sides decode every frame with FFmpeg's frame threads; the ratio is ingest wall time over
decode wall time for the same files in the same run (goal <= 1.3).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av

from benchmarks.common import write_result
from devkit.corpus import spec_for, write_clip
from services.encoder.engine import EncoderEngine
from shared.settings import Settings
from shared.text import video_text
from shared.vectors import EdgeVectorStore, VectorRecord

SIZES = {"360p": (640, 360), "720p": (1280, 720)}


def clips(folder: Path, count: int, seconds: float, size: tuple[int, int]) -> list[Path]:
    out = []
    for i in range(count):
        spec = spec_for(i, seed=99, seconds=seconds, fps=30, width=size[0], height=size[1])
        path = folder / f"{spec.clip_id}_{size[1]}p.mp4"
        if not path.exists():
            tmp = write_clip(spec, folder)
            tmp.rename(path)
        out.append(path)
    return out


def pure_decode(paths: list[Path]) -> int:
    frames = 0
    for p in paths:
        with av.open(str(p)) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            for _ in c.decode(stream):
                frames += 1
    return frames


def ingest(engine: EncoderEngine, store: EdgeVectorStore, paths: list[Path]) -> int:
    pairs = engine.embed_files(paths, [video_text("benchmark clip", ["bench"])] * len(paths))
    store.upsert([VectorRecord(p.stem, e.vector.tolist(), {"topic": e.topic}) for p, (_, e) in zip(paths, pairs)])
    return sum(a.keyframes.frames_decoded for a, _ in pairs)


def timed(fn, repeats: int) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=Path("var/bench/encoder"))
    args = p.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    settings = Settings()
    engine = EncoderEngine(settings.models, settings.encoder, settings.media)
    engine.warmup()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeVectorStore(Path(tmp) / "videos", engine.dim)
        try:
            for label, size in SIZES.items():
                with console.status(f"making {args.clips} clips at {label}"):
                    paths = clips(args.workdir, args.clips, args.seconds, size)
                pure_decode(paths)  # warm the page cache
                decode_s, frames = timed(lambda: pure_decode(paths), args.repeats)
                ingest_s, frames_ingest = timed(lambda: ingest(engine, store, paths), args.repeats)
                assert frames == frames_ingest
                rows.append({"resolution": label, "clips": len(paths), "frames": frames,
                             "decode_s": round(decode_s, 4), "ingest_s": round(ingest_s, 4),
                             "decode_fps": round(frames / decode_s, 1), "ingest_fps": round(frames / ingest_s, 1),
                             "ratio": round(ingest_s / decode_s, 3)})
        finally:
            store.close()
    table = Table(title="encoder ingest vs pure PyAV decode (same files, same run; median of "
                        f"{args.repeats})")
    for col in ("resolution", "frames", "decode fps", "ingest fps", "ingest/decode"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["resolution"], str(r["frames"]), f"{r['decode_fps']:,.0f}", f"{r['ingest_fps']:,.0f}",
                      f"{r['ratio']:.2f}x")
    console.print(table)
    path = write_result("encoder_ingest", {"rows": rows, "model_version": engine.version, "goal_ratio": 1.3,
                                           "provider": engine.video.provider})
    console.print(f"wrote {path}")
    return {"rows": rows}


if __name__ == "__main__":
    main()
