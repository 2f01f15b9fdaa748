"""The topic GAN's generator on onnxruntime: (topic ids, latents) -> uint8 RGB images.

The ONNX file (made by ``python -m training.train_gan``) takes ``z`` float32 (N, z_dim) and
``topic`` int64 (N,) and returns ``image`` float32 (N, 3, size, size) in [0, 1]; this wrapper
checks inputs, batches large requests and converts to uint8 NHWC. Latents come from
:func:`services.generation.core.latent.latents` (numpy only; no torch at serving time).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.inference import ModelError, OnnxModel, card_from_manifest
from shared.settings import ModelSettings

MODEL_NAME = "topic-gan"
MAX_BATCH = 64


class TopicGenerator(OnnxModel):
    """A loaded, checksum-verified topic generator; ``topics`` are in the order of its topic ids."""

    def __init__(self, settings: ModelSettings, folder: Path | None = None) -> None:
        folder = folder or settings.dir / "generation"
        super().__init__(card_from_manifest(folder / "manifest.json", MODEL_NAME), settings)
        self.topics: list[str] = list(self.card.meta["topics"])
        self.z_dim = int(self.card.meta["z_dim"])
        self.size = int(self.card.meta["size"])

    def topic_index(self, name: str) -> int:
        """The id of topic ``name``; a ValueError listing the valid topics otherwise."""
        return topic_index(name, self.topics)

    def generate(self, topic_ids: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(N,) topic ids and (N, z_dim) latents -> (N, size, size, 3) uint8 RGB."""
        topic_ids = np.asarray(topic_ids).reshape(-1).astype(np.int64)
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be (N, {self.z_dim}), got {z.shape}")
        if len(z) != len(topic_ids):
            raise ValueError(f"{len(topic_ids)} topic ids for {len(z)} latents")
        if len(topic_ids) and (topic_ids.min() < 0 or topic_ids.max() >= len(self.topics)):
            raise ValueError(f"topic ids must be in 0..{len(self.topics) - 1} ({', '.join(self.topics)})")
        out = np.empty((len(z), self.size, self.size, 3), np.uint8)
        for start in range(0, len(z), MAX_BATCH):
            sl = slice(start, start + MAX_BATCH)
            (image,) = self.run({"z": np.ascontiguousarray(z[sl]), "topic": topic_ids[sl]})
            out[sl] = to_uint8(image)
        return out

    def warmup(self) -> None:
        self.generate(np.zeros(1, np.int64), np.zeros((1, self.z_dim), np.float32))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] -> (N, H, W, 3) uint8, rounded."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)


def topic_index(name: str, topics: list[str] | tuple[str, ...] | None = None) -> int:
    """The id of topic ``name`` (default order: shared.content.TOPICS, which the model was trained on)."""
    if topics is None:
        from shared.content import TOPICS as topics
    try:
        return list(topics).index(name)
    except ValueError:
        raise ValueError(f"unknown topic {name!r}; valid topics: {', '.join(topics)}") from None


def load_generator(settings: ModelSettings, folder: Path | None = None) -> TopicGenerator:
    """The generator in ``folder`` (default ``settings.dir / "generation"``), warmed up.

    Raises :class:`shared.inference.ModelError` when the manifest or model file is missing or altered.
    """
    try:
        model = TopicGenerator(settings, folder)
    except KeyError as exc:
        raise ModelError(f"the generation manifest has no usable {MODEL_NAME!r} entry ({exc})") from exc
    model.warmup()
    return model
