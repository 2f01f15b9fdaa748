"""Style images the project draws itself (no downloaded artwork): deterministic, 256x256 RGB uint8.

* ``mosaic``: Voronoi cells in bold stained-glass colours with dark lead borders.
* ``waves``: swirling, domain-warped colour bands with short brush-stroke streaks (Van-Gogh-ish).
* ``ink``: dark cross-hatching and bold brush strokes on a paper tone.

    python -m training.style_images            # writes models/styles/<name>.png
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

SIZE = 256


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return y / size, x / size


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1]."""
    return cv2.resize(rng.random((cells, cells)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)


def mosaic(size: int = SIZE, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    points = rng.random((70, 2)).astype(np.float32)
    d = np.sqrt((x[..., None] - points[:, 0]) ** 2 + (y[..., None] - points[:, 1]) ** 2)  # H, W, P
    order = np.argsort(d, axis=-1)
    nearest = order[..., 0]
    d1 = np.take_along_axis(d, order[..., :1], -1)[..., 0]
    d2 = np.take_along_axis(d, order[..., 1:2], -1)[..., 0]
    palette = np.array([[0.85, 0.1, 0.1], [0.1, 0.25, 0.75], [0.95, 0.75, 0.1], [0.1, 0.6, 0.35],
                        [0.95, 0.45, 0.05], [0.5, 0.15, 0.6], [0.1, 0.65, 0.8], [0.9, 0.9, 0.85]], np.float32)
    colours = palette[rng.integers(0, len(palette), len(points))] * rng.uniform(0.8, 1.0, (len(points), 1))
    shade = 0.85 + 0.15 * _noise(rng, size, 12)[..., None]  # a little glass texture inside each cell
    img = colours[nearest] * shade
    img[(d2 - d1) < 0.012] = (0.06, 0.05, 0.05)  # the lead between cells
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def waves(size: int = SIZE, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    # two vortices twist the plane, then bands follow the twisted coordinates
    u, v = x.copy(), y.copy()
    for cx, cy, turn in ((0.3, 0.35, 2.5), (0.72, 0.68, -2.0)):
        dx, dy = x - cx, y - cy
        a = turn * np.exp(-np.sqrt(dx ** 2 + dy ** 2) / 0.18)
        u, v = u + dx * (np.cos(a) - 1) - dy * np.sin(a), v + dx * np.sin(a) + dy * (np.cos(a) - 1)
    swirl = np.sin(2 * np.pi * (2.0 * v + 0.6 * np.sin(2 * np.pi * u) + 0.3 * _noise(rng, size, 4))) * 0.5 + 0.5
    palette = np.array([[0.05, 0.1, 0.35], [0.1, 0.3, 0.7], [0.4, 0.65, 0.9], [0.95, 0.85, 0.3], [0.98, 0.95, 0.8]],
                       np.float32)
    t = swirl * (len(palette) - 1)
    i = np.minimum(t.astype(int), len(palette) - 2)
    img = np.ascontiguousarray(palette[i] + (palette[i + 1] - palette[i]) * (t - i)[..., None])
    # short brush strokes along the bands, each in the colour under it with a little jitter
    gy, gx = np.gradient(swirl)
    for py, px in rng.integers(0, size, (2600, 2)):
        angle = np.arctan2(gy[py, px], gx[py, px]) + np.pi / 2
        d = np.array([np.cos(angle), np.sin(angle)]) * rng.uniform(4, 9)
        colour = np.clip(img[py, px] * rng.uniform(0.8, 1.2), 0, 1)
        cv2.line(img, (int(px - d[0]), int(py - d[1])), (int(px + d[0]), int(py + d[1])),
                 tuple(float(c) for c in colour), 2, cv2.LINE_AA)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def ink(size: int = SIZE, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = _grid(size)
    paper = np.array([0.94, 0.9, 0.8], np.float32)
    tone = _noise(rng, size, 5)  # how dark each region is: more hatching layers where darker
    ink_mask = np.zeros((size, size), np.float32)
    for k, angle in enumerate((0.8, -0.8, 0.0)):
        lines = np.sin(2 * np.pi * 28 * (x * np.cos(angle) + y * np.sin(angle))) > 0.55
        ink_mask = np.maximum(ink_mask, lines * (tone > 0.35 + 0.2 * k))
    canvas = (ink_mask * 255).astype(np.uint8)
    for _ in range(9):  # bold brush strokes: thick random polylines
        pts = np.cumsum(rng.normal(0, 18, (6, 2)), axis=0) + rng.uniform(0, size, 2)
        cv2.polylines(canvas, [pts.astype(np.int32)], False, 255, int(rng.integers(3, 9)), cv2.LINE_AA)
    dark = canvas.astype(np.float32)[..., None] / 255
    img = paper * (0.95 + 0.05 * _noise(rng, size, 40)[..., None]) * (1 - dark) + np.array([0.06, 0.05, 0.08]) * dark
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


STYLES: dict[str, Callable[..., np.ndarray]] = {"mosaic": mosaic, "waves": waves, "ink": ink}


def style_image(name: str) -> np.ndarray:
    """The 256x256 RGB uint8 image of a style."""
    if name not in STYLES:
        raise KeyError(f"unknown style {name!r}; known: {', '.join(STYLES)}")
    return STYLES[name]()


def origin(name: str) -> str:
    """Where a style image comes from, for the manifest."""
    return f"procedural, training/style_images.py:{STYLES[name].__name__}"


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in STYLES:
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(style_image(name), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_all(Path(__file__).resolve().parents[1] / "models" / "styles"):
        print(f"wrote {p} ({p.stat().st_size} bytes)")
