"""``clipstream embed``: the encoder's code path on local files, one JSON line per file."""

from __future__ import annotations

import json
from pathlib import Path

from services.encoder.engine import EncoderEngine
from shared.media import MediaError
from shared.settings import Settings


def run_embed(files: list[str], out: str, title: str = "", tags: tuple[str, ...] = ()) -> int:
    from rich.console import Console

    from shared.progress import progress
    from shared.text import video_text

    console = Console(stderr=True)
    settings = Settings()
    engine = EncoderEngine(settings.models, settings.encoder, settings.media)
    failures = 0
    with open(out, "w") if out != "-" else open("/dev/stdout", "w") as sink:
        for name in progress(files, "embedding"):
            path = Path(name)
            try:
                [(analysis, embedded)] = engine.embed_files([path], [video_text(title, tags)])
            except MediaError as exc:
                failures += 1
                console.print(f"[red]{name}: {exc.reason}[/]: {exc.detail}")
                sink.write(json.dumps({"file": name, "error": exc.reason, "detail": exc.detail}) + "\n")
                continue
            sink.write(json.dumps({
                "file": name, "vector": [round(float(x), 6) for x in embedded.vector],
                "keyframes": [round(t, 3) for t in analysis.keyframes.times_s],
                "duration_s": round(analysis.info.duration_s, 3), "model_version": engine.version,
                "predicted_topic": embedded.topic, "concepts": [{"name": n, "score": v} for n, v in embedded.concepts],
            }) + "\n")
    console.print(f"{len(files) - failures} embedded, {failures} failed -> {out}")
    return 1 if failures else 0
