"""``clipstream stylize IN OUT --style NAME [--strength S] [--lut FILE] [--look NAME] [--enhance]`` and ``--list``.

Runs the service's own code path (request plan, whole-video processing) on a local file, with a
progress bar; prints one JSON line describing the output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from services.stylization.core.ops import RequestError, plan
from services.stylization.core.style_models import load_styles
from services.stylization.core.video import process_video
from services.stylization.handlers import describe_styles
from shared.codec import describe_validation_error
from shared.events import ColorOp, ColorParams, EnhanceOp, EnhanceParams, LutOp, StyleOp
from shared.media import MediaError
from shared.progress import bar
from shared.settings import ModelSettings, Settings, StylizationSettings


def build_ops(style: str | None, strength: float, lut: str | None, look: str | None, enhance: bool) -> list:
    ops: list = []
    if style:
        ops.append(StyleOp(style=style, strength=strength))
    if lut:
        ops.append(LutOp(lut=lut))
    if look:
        ops.append(ColorOp(color=ColorParams(look=look)))
    if enhance:
        ops.append(EnhanceOp(enhance=EnhanceParams(denoise=0.3, sharpen=0.4)))
    return ops


def print_catalogue(settings: StylizationSettings, models: ModelSettings) -> int:
    listing = describe_styles(load_styles(models), settings.lut_dir)
    table = Table("kind", "name", "model")
    for name, kind in listing["styles"].items():
        table.add_row("style", name, kind)
    for name in listing["looks"]:
        table.add_row("look", name, "colour")
    for name in listing["luts"]:
        table.add_row("lut", name, ".cube")
    Console().print(table)
    return 0


def run_stylize(src: str | None, dst: str | None, style: str | None, strength: float, lut: str | None,
                look: str | None, enhance: bool, listing: bool) -> int:
    root = Settings()
    settings = root.stylization
    if listing:
        return print_catalogue(settings, root.models)
    if not src or not dst:
        raise SystemExit("usage: clipstream stylize IN OUT --style NAME (or --list)")
    lut_dir = settings.lut_dir
    if lut and Path(lut).suffix == ".cube" and Path(lut).exists():  # a file of the user's own: its folder
        lut_dir, lut = Path(lut).resolve().parent, Path(lut).name
    try:
        ops = build_ops(style, strength, lut, look, enhance)
    except ValidationError as exc:
        print(f"error: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    if not ops:
        raise SystemExit("nothing to do: give --style, --lut, --look or --enhance")
    try:
        steps = plan(ops, load_styles(root.models), lut_dir, settings.flicker_reduction)
        with bar("stylizing", total=100) as progress:
            last = [0]

            def advance(fraction: float) -> None:
                now = int(fraction * 100)
                progress.update(now - last[0])
                last[0] = now

            result = process_video(Path(src), Path(dst), steps.transform(), scale=steps.scale, batch=settings.batch,
                                   crf=settings.crf, media=root.media, max_duration_s=settings.max_duration_s,
                                   progress=advance)
    except (RequestError, MediaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"output": str(result.path), "ops": list(steps.names), "frames": result.frames,
                      "duration_s": round(result.duration_s, 3), "size": [result.width, result.height],
                      "audio": result.audio, "fps": round(result.fps, 1)}))
    return 0
