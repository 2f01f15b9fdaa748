"""Stylization throughput: frames/s of whole-video processing per model and operation, at 360p and 720p.

    python -m benchmarks.stylization [--seconds 3] [--sizes 640x360,1280x720] [--provider cpu|auto]

Baseline, in the same run: decode + encode alone (the identity transform through the same
pipeline). Each row is the full path a request takes (decode, the operation, flicker reduction
for style models, H.264 encode, audio copy). Goal: >= 10 fps at 360p on CPU for the fast style
network; the full-size Johnson network is reported beside it. With ``--provider auto`` on a
machine with a GPU, the style models run on onnxruntime's CUDA provider and the JSON says so.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.common import write_result
from devkit.corpus import spec_for, write_clip
from services.stylization.core.ops import plan
from services.stylization.core.style_models import load_styles
from services.stylization.core.video import process_video
from shared.events import ColorOp, ColorParams, EnhanceOp, EnhanceParams, LutOp, StyleOp
from shared.settings import MediaSettings, Settings, StylizationSettings

OPERATIONS = {
    "lut teal_orange": [LutOp(lut="teal_orange")],
    "colour (white balance, CLAHE, saturation)": [ColorOp(color=ColorParams(white_balance=True, clahe=True,
                                                                            saturation=1.2))],
    "enhance (denoise, sharpen)": [EnhanceOp(enhance=EnhanceParams(denoise=0.3, sharpen=0.4))],
}


def fps(src: Path, out: Path, ops: list, styles: dict, settings: StylizationSettings, media: MediaSettings,
        size: tuple[int, int]) -> float:
    steps = plan(ops, styles, settings.lut_dir, settings.flicker_reduction)
    steps.transform()([np.zeros((size[1], size[0], 3), np.uint8)] * 2)  # warm-up: first call at this size
    return process_video(src, out, steps.transform(), scale=steps.scale, batch=settings.batch, media=media).fps


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--sizes", default="640x360,1280x720")
    p.add_argument("--provider", default="cpu", choices=["cpu", "auto"])
    args = p.parse_args(argv)
    console = Console(width=max(Console().width, 120))
    root = Settings().with_section("models", provider=args.provider)
    settings = root.stylization
    styles = load_styles(root.models)
    providers = sorted({m.provider for m in styles.values()})
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            w, h = (int(x) for x in size.split("x"))
            src = write_clip(spec_for(0, seed=5, seconds=args.seconds, width=w, height=h), Path(tmp) / size)
            out = Path(tmp) / f"{size}-out.mp4"
            label = f"{h}p"
            fps(src, out, [], styles, settings, root.media, (w, h))  # the first pass over a file pays for cold caches
            base = fps(src, out, [], styles, settings, root.media, (w, h))
            rows.setdefault("decode + encode (baseline)", {})[label] = base
            for name in sorted(styles):
                with console.status(f"{label}: style {name}"):
                    rows.setdefault(f"style {name} ({styles[name].kind})", {})[label] = fps(
                        src, out, [StyleOp(style=name)], styles, settings, root.media, (w, h))
            for name, ops in OPERATIONS.items():
                with console.status(f"{label}: {name}"):
                    rows.setdefault(name, {})[label] = fps(src, out, ops, styles, settings, root.media, (w, h))
    labels = [f"{int(s.split('x')[1])}p" for s in args.sizes.split(",")]
    table = Table("operation", *[f"{x} fps" for x in labels], *[f"{x} vs baseline" for x in labels],
                  title=f"stylization on {', '.join(providers)}")
    baseline = rows["decode + encode (baseline)"]
    for name, by in rows.items():
        table.add_row(name, *[f"{by[x]:.1f}" for x in labels], *[f"{by[x] / baseline[x]:.2f}x" for x in labels])
    console.print(table)
    result = {"providers": providers, "seconds": args.seconds,
              "fps": {name: {k: round(v, 2) for k, v in by.items()} for name, by in rows.items()},
              "goal": "fast style network >= 10 fps at 360p on CPU"}
    suffix = "" if providers == ["CPUExecutionProvider"] else "_" + providers[0].replace("ExecutionProvider", "").lower()
    console.print(f"wrote {write_result('stylization' + suffix, result)}")
    return result


if __name__ == "__main__":
    main()
