"""The encoder of today, "video-encoder-1" (``models/video_encoder.onnx``), as an evaluation baseline.

The checked-in model takes 64 px letterboxed keyframes and returns an embedding and topic
probabilities; it has no text path. Only its embedding is used here, L2-normalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.encoder.core.model import VideoEncoderModel
from services.encoder.core.pipeline import analyse
from shared.concepts import unit
from shared.settings import MediaSettings, ModelSettings


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
