"""Which keyframes make a good cover: sharp, well exposed, colourful; never black, blurred or blown out.

Each frame gets three measures, all on the frame as decoded (RGB uint8):

- **sharpness**: the variance of the Laplacian of the grey image (the standard focus measure), on a log scale;
  a frame far less sharp than the video's sharpest frames (a motion blur, a defocused shot) is marked blurred.
- **exposure**: how far the mean brightness is from mid-grey, and how much of the frame is crushed to black or
  blown to white.
- **colourfulness**: Hasler and Suesstrunk's measure (2003) on the opponent channels.

A frame that is mostly black, mostly white or blurred is unusable: it ranks below every usable one, whatever
its other measures. Pure functions: frames in, scores out; :func:`save_covers` writes the chosen ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DARK, BRIGHT = 0.12, 0.88  # mean brightness (0..1) beyond which a frame is too dark or too bright for a cover
CLIPPED_MAX = 0.4  # the most of a frame that may be crushed to black or blown to white
BLUR_RATIO = 0.25  # a frame whose Laplacian variance is under this share of the video's sharpest is blurred
WEIGHTS = {"sharpness": 0.45, "exposure": 0.35, "colourfulness": 0.2}


@dataclass(frozen=True)
class CoverScore:
    index: int  # the keyframe's position
    score: float
    sharpness: float  # 0..1
    exposure: float  # 0..1
    colourfulness: float  # 0..1
    unusable: str | None = None  # why the frame cannot be a cover (None: it can)

    @property
    def reason(self) -> str:
        if self.unusable:
            return self.unusable
        return (f"sharpness {self.sharpness:.2f}, exposure {self.exposure:.2f}, "
                f"colourfulness {self.colourfulness:.2f}")


def measures(frame: np.ndarray) -> tuple[float, float, float, float, float]:
    """(Laplacian variance, mean brightness 0..1, clipped share 0..1, exposure 0..1, colourfulness 0..1)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    lap_var = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    luma = grey.astype(np.float32) / 255.0
    mean = float(luma.mean())
    clipped = float(np.mean((luma < 0.04) | (luma > 0.96)))
    exposure = max(0.0, 1.0 - 2.0 * abs(mean - 0.5)) * (1.0 - clipped)
    rgb = frame.astype(np.float32)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colour = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    return lap_var, mean, clipped, exposure, min(1.0, colour / 110.0)  # ~110: "extremely colourful" in the paper


def rank_covers(frames: np.ndarray) -> list[CoverScore]:
    """Every frame of ``frames`` (K, H, W, 3) RGB uint8 scored, best first; unusable frames last."""
    if len(frames) == 0:
        return []
    rows = [measures(f) for f in frames]
    sharpest = max(r[0] for r in rows)
    out = []
    for i, (lap_var, mean, clipped, exposure, colour) in enumerate(rows):
        sharp = min(1.0, float(np.log1p(lap_var) / np.log1p(2000.0)))
        why = None
        if mean < DARK:
            why = f"too dark (mean brightness {mean:.2f})"
        elif mean > BRIGHT:
            why = f"over-exposed (mean brightness {mean:.2f})"
        elif clipped > CLIPPED_MAX:
            why = f"{clipped:.0%} of the frame crushed to black or blown to white"
        elif lap_var < BLUR_RATIO * sharpest or lap_var < 1.0:
            why = f"blurred (Laplacian variance {lap_var:.0f}, the sharpest frame's {sharpest:.0f})"
        score = (WEIGHTS["sharpness"] * sharp + WEIGHTS["exposure"] * exposure
                 + WEIGHTS["colourfulness"] * colour)
        out.append(CoverScore(i, round(score, 4), round(sharp, 4), round(exposure, 4), round(colour, 4), why))
    return sorted(out, key=lambda c: (c.unusable is not None, -c.score, c.index))


def save_covers(frames: np.ndarray, folder: Path, stem: str, n: int = 3) -> list[tuple[str, CoverScore]]:
    """The best ``n`` usable frames written as ``folder/<stem>-<rank>.jpg``; returns (file name, score) per cover."""
    chosen = [c for c in rank_covers(frames) if c.unusable is None][:n]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for rank, cover in enumerate(chosen, 1):
        name = f"{stem}-{rank}.jpg"
        cv2.imwrite(str(folder / name), cv2.cvtColor(frames[cover.index], cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
        out.append((name, cover))
    return out
