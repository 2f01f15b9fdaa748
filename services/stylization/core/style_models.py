"""Style-transfer models on onnxruntime: uint8 RGB frames in, stylised uint8 RGB frames out.

``load_styles`` reads ``<models>/styles/manifest.json`` (written by ``training.train_style``)
and maps the style names used in requests to models:

* ``"<style>"``: the slim real-time net (kind ``fast``),
* ``"<style>-johnson"``: the full Johnson et al. net (kind ``johnson``),
* ``"<style>-vae"``: the multi-style VAE with that style's id fixed (kind ``vae``; one session shared).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from shared.inference import ModelCard, ModelError, OnnxModel, card_from_manifest
from shared.settings import ModelSettings

KINDS = ("fast", "johnson", "vae")


class UnknownStyle(ModelError, KeyError):
    """A request named a style no loaded model serves (a ModelError and a KeyError)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StyleModels(dict[str, "StyleModel"]):
    """The loaded styles by request name; looking up an unknown name raises :class:`UnknownStyle`."""

    def __missing__(self, name: str) -> StyleModel:
        raise UnknownStyle(f"unknown style {name!r}; available: {', '.join(sorted(self)) or 'none'}")


class StyleModel(OnnxModel):
    """One style of one exported net.

    ``stylize`` reflect-pads each frame by ``margin`` pixels (the nets draw a frame-like artefact at
    image borders, which then falls outside the crop) and up to the net's multiple, then crops back.
    """

    def __init__(self, card: ModelCard, settings: ModelSettings, style: str | None = None,
                 margin: int = 16) -> None:
        kind = card.meta.get("kind")
        if kind not in KINDS:
            raise ModelError(f"{card.name}: unknown style-model kind {kind!r} (expected one of {', '.join(KINDS)})")
        super().__init__(card, settings)
        self.kind: str = kind
        self.styles: list[str] = list(card.meta.get("styles") or [])
        self.multiple, self.margin = int(card.meta.get("multiple_of", 4)), margin
        if not self.styles:
            raise ModelError(f"{card.name}: the manifest lists no styles")
        self._set_style(style or self.styles[0])

    def _set_style(self, style: str) -> None:
        if style not in self.styles:
            raise UnknownStyle(f"{self.card.name} does not serve style {style!r}; it serves {', '.join(self.styles)}")
        self.style, self.style_id = style, self.styles.index(style)
        self.name = style if self.kind == "fast" else f"{style}-{self.kind}"

    def with_style(self, style: str) -> StyleModel:
        """The same session serving another of its styles (for the multi-style VAE)."""
        other = copy.copy(self)
        other._set_style(style)
        return other

    def stylize(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, H, W, 3) uint8 RGB, any H and W.

        On CPU the frames go through the net one at a time: measured here, batch 1 is the fastest
        (17 vs 14.6 fps at 360p for the fast net) and onnxruntime's memory arena grows with the batch
        (0.9 GB at 720p for one frame, 6 GB for eight), and it never shrinks.
        """
        if frames.ndim != 4 or frames.shape[3] != 3:
            raise ValueError(f"expected frames of shape (N, H, W, 3), got {frames.shape}")
        step = self.max_batch
        if len(frames) > step:
            return np.concatenate([self._stylize(frames[i:i + step]) for i in range(0, len(frames), step)])
        return self._stylize(frames)

    def _stylize(self, frames: np.ndarray) -> np.ndarray:
        n, h, w, _ = frames.shape
        if n == 0 or h == 0 or w == 0:
            return np.zeros_like(frames, dtype=np.uint8)
        m = self.margin
        ph, pw = -(h + 2 * m) % self.multiple, -(w + 2 * m) % self.multiple
        x = frames.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        x = np.pad(x, ((0, 0), (0, 0), (m, m + ph), (m, m + pw)), mode="reflect")
        feeds = {"image": np.ascontiguousarray(x)}
        if self.kind == "vae":
            feeds["style"] = np.full(n, self.style_id, np.int64)
        y = self.run(feeds)[0][:, :, m:m + h, m:m + w]
        return (np.clip(y, 0.0, 1.0).transpose(0, 2, 3, 1) * 255.0 + 0.5).astype(np.uint8)

    @property
    def max_batch(self) -> int:
        return 1 if self.provider == "CPUExecutionProvider" else 8

    def warmup(self) -> None:
        self.stylize(np.zeros((1, 64, 64, 3), np.uint8))


def load_styles(settings: ModelSettings, folder: Path | None = None) -> StyleModels:
    """Every style in ``folder/manifest.json`` (default: ``settings.dir / "styles"``) by request name."""
    folder = folder or settings.dir / "styles"
    manifest = folder / "manifest.json"
    if not manifest.exists():
        raise ModelError(f"style manifest {manifest} not found: train styles with python -m training.train_style")
    try:
        names = sorted(json.loads(manifest.read_text())["models"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"style manifest {manifest} is unreadable: {exc}") from exc
    models = StyleModels()
    for entry in names:
        base = StyleModel(card_from_manifest(manifest, entry), settings)
        for style in base.styles:
            model = base.with_style(style)
            if model.name in models:
                raise ModelError(f"style {model.name!r} is served by both {models[model.name].card.name} and {entry}")
            models[model.name] = model
    return models
