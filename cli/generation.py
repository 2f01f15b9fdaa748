"""``clipstream generate --topic T --count N --out DIR [--kind cover|frames|clip] [--seed S]``.

The service's own code path (request checks, generation, upscaling, encoding) on this machine;
prints one JSON line with the artefacts written.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from services.generation.core.generator import load_generator
from services.generation.handlers import RequestError, check, produce
from shared.codec import describe_validation_error
from shared.events import GenerationRequested
from shared.settings import Settings


def run_generate(topic: str, count: int, out: str, kind: str, seed: int, size: int, duration_s: float, fps: int) -> int:
    try:
        request = GenerationRequested(request_id="cli", topic=topic, kind=kind, count=count, seed=seed, size=size,
                                      duration_s=duration_s, fps=fps)
    except ValidationError as exc:
        print(f"error: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    root = Settings()
    settings = root.generation
    generator = load_generator(root.models)
    try:
        index = check(request, list(generator.topics), settings.max_pixels_per_request)
    except RequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    paths = produce(generator, request, index, Path(out), settings.batch)
    print(json.dumps({"topic": topic, "kind": kind, "seed": seed, "model_version": generator.version,
                      "artefacts": [str(p) for p in paths], "seconds": round(time.perf_counter() - started, 3)}))
    return 0
