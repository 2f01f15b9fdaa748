"""The encoder of today, "video-encoder-1" (``models/video_encoder.onnx``), as an evaluation baseline.

The checked-in model (trained on generated clips only, ``make train-encoder``) takes 64 px
letterboxed keyframes and returns an embedding and topic probabilities; it has no text path. The
encoder service no longer serves it: it stays as the baseline of ``clipstream eval encoder`` and as
the feature extractor of the generation evaluation (its topics are the generator's).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.encoder.core.pipeline import analyse
from shared.concepts import unit
from shared.inference import OnnxModel, card_from_manifest
from shared.settings import MediaSettings, ModelSettings

MODEL_NAME = "video-encoder"


class VideoEncoderModel(OnnxModel):
    def __init__(self, settings: ModelSettings) -> None:
        super().__init__(card_from_manifest(settings.dir / "manifest.json", MODEL_NAME), settings)
        self.topics: list[str] = list(self.card.meta.get("topics", []))
        self.frame_size = int(self.card.meta.get("frame_size", 64))
        self.dim = int(self.card.meta.get("outputs", {}).get("embedding", [None, 128])[1])

    def embed(self, clips: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """clips: each (K_i, S, S, 3) uint8. Returns (N, D) embeddings and (N, topics) probabilities."""
        if not clips:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, len(self.topics)), np.float32)
        k = max(len(c) for c in clips)
        s = self.frame_size
        frames = np.zeros((len(clips), k, 3, s, s), np.float32)
        mask = np.zeros((len(clips), k), np.float32)
        for i, clip in enumerate(clips):
            if clip.shape[1:3] != (s, s):
                raise ValueError(f"keyframes are {clip.shape[1]}x{clip.shape[2]}, the model takes {s}x{s}")
            frames[i, : len(clip)] = clip.transpose(0, 3, 1, 2) / 255.0
            mask[i, : len(clip)] = 1.0
        embedding, logits = self.run({"frames": frames, "mask": mask})
        z = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return embedding.astype(np.float32), probs.astype(np.float32)

    def warmup(self) -> None:
        self.embed([np.zeros((2, self.frame_size, self.frame_size, 3), np.uint8)])


class LegacyEncoder:
    def __init__(self, models: ModelSettings, media: MediaSettings) -> None:
        self.model = VideoEncoderModel(models)
        self.media = media.model_copy(update={"frame_size": self.model.frame_size, "frame_fit": "letterbox"})
        self.version = self.model.version

    def keyframes(self, path: Path) -> np.ndarray:
        """(K, S, S, 3) uint8 keyframes, letterboxed to the model's size."""
        return analyse(Path(path), self.media).keyframes.frames

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) unit embeddings, one per clip of keyframes."""
        embedding, _ = self.model.embed(list(clips))
        return unit(embedding)

    def warmup(self) -> None:
        self.model.warmup()
