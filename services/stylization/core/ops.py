"""A request's ordered operations, checked up front and turned into one frame-batch transform.

``plan`` validates everything a request names (styles, LUT files, looks) before a frame is
decoded, so bad input fails fast with a reason; ``Plan.transform`` builds the per-video function
(stateful: each style step owns a flicker reducer) that ``process_video`` calls on batches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.stylization.core.color import LOOKS, apply_color, apply_enhance
from services.stylization.core.lut import LutError, apply_lut, load_lut
from services.stylization.core.temporal import FlickerReducer
from shared.events import ColorOp, EnhanceOp, LutOp, StyleOp, StylizeOperation
from shared.jobs import RequestError

Frames = list[np.ndarray]
Step = Callable[[Frames], Frames]


@dataclass(frozen=True)
class Plan:
    steps: tuple[Callable[[], Step], ...]  # factories: a fresh, stateful step per video
    scale: int
    names: tuple[str, ...]

    def transform(self) -> Step:
        steps = [make() for make in self.steps]

        def run(frames: Frames) -> Frames:
            for step in steps:
                frames = step(frames)
            return frames

        return run


def _style_step(model, strength: float, flicker: float) -> Callable[[], Step]:
    def make() -> Step:
        reducer = FlickerReducer(flicker)

        def step(frames: Frames) -> Frames:
            styled = model.stylize(np.stack(frames))
            out = []
            for src, dst in zip(frames, styled):
                if strength < 1.0:
                    dst = (src + strength * (dst.astype(np.float32) - src) + 0.5).clip(0, 255).astype(np.uint8)
                out.append(reducer(src, dst))
            return out

        return step

    return make


def _per_frame(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[], Step]:
    return lambda: (lambda frames: [fn(f) for f in frames])


def plan(ops: Sequence[StylizeOperation], styles: Mapping[str, object], lut_dir: Path, flicker: float = 0.6) -> Plan:
    steps, names, scale = [], [], 1
    for op in ops:
        if isinstance(op, StyleOp):
            model = styles.get(op.style)
            if model is None:
                raise RequestError("unknown_style", f"unknown style {op.style!r}; available: {', '.join(sorted(styles))}")
            steps.append(_style_step(model, op.strength, flicker))
            names.append(f"style:{op.style}@{op.strength:g}")
        elif isinstance(op, LutOp):
            try:
                lut = load_lut(op.lut, lut_dir)
            except LutError as exc:
                raise RequestError("bad_lut", str(exc)) from exc
            steps.append(_per_frame(lambda f, lut=lut: apply_lut(f, lut)))
            names.append(f"lut:{op.lut}")
        elif isinstance(op, ColorOp):
            if op.color.look is not None and op.color.look not in LOOKS:
                raise RequestError("unknown_look", f"unknown look {op.color.look!r}; available: {', '.join(sorted(LOOKS))}")
            steps.append(_per_frame(lambda f, p=op.color: apply_color(f, p)))
            names.append("color")
        elif isinstance(op, EnhanceOp):
            steps.append(_per_frame(lambda f, p=op.enhance: apply_enhance(f, p)))
            scale *= op.enhance.upscale
            names.append("enhance")
        else:  # pragma: no cover - the schema admits no other kind
            raise RequestError("bad_op", f"unsupported operation {op!r}")
    if scale > 2:
        raise RequestError("bad_op", "upscaling more than 2x in one request is not supported")
    return Plan(tuple(steps), scale, tuple(names))

