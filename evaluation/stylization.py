"""``clipstream eval stylization``: content kept, style reached, flicker removed, for every style model.

On held-out clips of the project's corpus (seeds never used in training), each style model
stylizes consecutive frames, and the report gives per model:

- ``content_edge_ssim``: SSIM between the Sobel edge maps of input and output (1 = edges kept);
- ``style_before`` / ``style_after``: relative Gram distance to the style image (the training
  loss's measure, on its frozen features), for the input frames and for the output frames;
- ``style_after_independent``: the same distance on a second, independently seeded random
  feature net the models never trained against (a check that the drop is not an artefact);
- ``temporal_raw`` / ``temporal_steady``: flow-compensated error between consecutive output
  frames (0-255) without and with the flicker reduction the service applies.

Writes a before/after PNG grid (a row per model). ``--json`` prints
``{"systems": {name: {metric: value}}}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from devkit.corpus import TOPICS, frames, spec_for
from services.stylization.core.style_models import load_styles
from services.stylization.core.temporal import FlickerReducer, temporal_error
from shared.progress import progress
from shared.settings import Settings

HELD_OUT_SEED = 9_001  # clips of this seed are never in a training run


def content_frames(clips: int, count: int, width: int = 320, height: int = 180) -> list[list[np.ndarray]]:
    out = []
    for i in range(clips):
        spec = spec_for(i % len(TOPICS), seed=HELD_OUT_SEED + i, seconds=count / 24 + 0.5, width=width, height=height)
        out.append(list(frames(spec))[:count])
    return out


def _edges(img: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two single-channel images (Gaussian window, sigma 1.5)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def edge_ssim(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    def norm(e: np.ndarray) -> np.ndarray:
        return 255 * e / (np.percentile(e, 99) + 1e-6)

    return float(np.mean([ssim(norm(_edges(i)), norm(_edges(o))) for i, o in zip(inputs, outputs)]))


class StyleDistance:
    """Relative Gram distance to a style image on frozen features (torch, from the train extra)."""

    def __init__(self, independent: bool = False) -> None:
        import torch

        from training.style_nets import FeatureNet, RandomFeatures

        self.torch = torch
        if independent:
            self.net = RandomFeatures(seed=777).eval().requires_grad_(False)
            self.features = lambda x: self.net(x)
        else:
            self.net = FeatureNet()
            self.features = lambda x: self.net(x)[0]

    def _tensor(self, images: list[np.ndarray]):
        return self.torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0

    def __call__(self, images: list[np.ndarray], style: np.ndarray) -> float:
        from training.style_nets import gram, style_loss

        with self.torch.no_grad():
            targets = [gram(f) for f in self.features(self._tensor([style]))]
            return float(style_loss(self.features(self._tensor(images)), targets))


def stylize_clip(model, clip: list[np.ndarray], flicker: float, batch: int = 8) -> tuple[list, list]:
    raw = [o for s in range(0, len(clip), batch) for o in model.stylize(np.stack(clip[s:s + batch]))]
    reducer = FlickerReducer(flicker)
    return raw, [reducer(i, o) for i, o in zip(clip, raw)]


def evaluate(clips: int = 4, count: int = 16) -> tuple[dict[str, dict[str, float]], dict[str, list[np.ndarray]]]:
    from training.style_images import style_image

    root = Settings()
    settings = root.stylization
    styles = load_styles(root.models)
    content = content_frames(clips, count)
    flat_inputs = [f for clip in content for f in clip]
    train_dist, indep_dist = StyleDistance(), StyleDistance(independent=True)
    systems: dict[str, dict[str, float]] = {}
    samples: dict[str, list[np.ndarray]] = {"input": [content[c][count // 2] for c in range(clips)]}
    for name in progress(sorted(styles), "evaluating styles"):
        model = styles[name]
        raw_all, steady_all = [], []
        for clip in content:
            raw, steady = stylize_clip(model, clip, settings.flicker_reduction)
            raw_all.append(raw)
            steady_all.append(steady)
        flat_out = [f for clip in steady_all for f in clip]
        target = style_image(model.style)
        systems[name] = {
            "content_edge_ssim": edge_ssim(flat_inputs, flat_out),
            "style_before": train_dist(flat_inputs, target),
            "style_after": train_dist(flat_out, target),
            "style_before_independent": indep_dist(flat_inputs, target),
            "style_after_independent": indep_dist(flat_out, target),
            "temporal_raw": float(np.mean([temporal_error(c, o) for c, o in zip(content, raw_all)])),
            "temporal_steady": float(np.mean([temporal_error(c, o) for c, o in zip(content, steady_all)])),
        }
        samples[name] = [steady_all[c][count // 2] for c in range(clips)]
    systems["input (no style)"] = {"content_edge_ssim": 1.0,
                                   "temporal_raw": float(np.mean([temporal_error(c, c) for c in content]))}
    return systems, samples


def write_grid(samples: dict[str, list[np.ndarray]], path: Path, cell: int = 200) -> Path:
    rows = []
    for name, images in samples.items():
        cells = [cv2.resize(img, (cell, cell * img.shape[0] // img.shape[1])) for img in images]
        row = np.concatenate(cells, axis=1)
        label = np.full((row.shape[0], 150, 3), 24, np.uint8)
        cv2.putText(label, name[:18], (6, row.shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1,
                    cv2.LINE_AA)
        rows.append(np.concatenate([label, row], axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    return path


def run_eval(workdir: str, as_json: bool, clips: int = 4, count: int = 16) -> int:
    systems, samples = evaluate(clips, count)
    grid = write_grid(samples, Path(workdir) / "stylization_grid.png")
    if as_json:
        print(json.dumps({"systems": {n: {k: round(v, 4) for k, v in m.items()} for n, m in systems.items()},
                          "grid": str(grid)}))
        return 0
    metrics = ["content_edge_ssim", "style_before", "style_after", "style_before_independent",
               "style_after_independent", "temporal_raw", "temporal_steady"]
    headers = ["edge SSIM", "style before", "style after", "indep. before", "indep. after", "flicker raw",
               "flicker steady"]
    table = Table("system", *headers, title="stylization on held-out corpus clips")
    for name, m in systems.items():
        table.add_row(name, *[f"{m[k]:.3f}" if k in m else "-" for k in metrics])
    console = Console(width=max(Console().width, 130))
    console.print(table)
    console.print("style: relative Gram distance to the style image (training features; indep.: a net never trained "
                  "against); flicker: flow-compensated error between consecutive frames (0-255)")
    console.print(f"before/after grid: {grid}")
    return 0
