"""The encoder's models together: keyframes and text in, fused vectors out (one batched call)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.encoder.core.fusion import fuse
from services.encoder.core.model import VideoEncoderModel
from services.encoder.core.pipeline import Analysis, analyse, top_topic
from shared.settings import EncoderSettings, MediaSettings, ModelSettings
from shared.text import TextEmbedder


@dataclass(frozen=True)
class Embedded:
    vector: np.ndarray  # fused, L2-normalised
    visual: np.ndarray  # visual part only, L2-normalised
    topic: str
    topic_score: float


class EncoderEngine:
    def __init__(self, models: ModelSettings, encoder: EncoderSettings, media: MediaSettings) -> None:
        self.settings = encoder
        self.video = VideoEncoderModel(models)
        self.text = TextEmbedder(models)
        self.media = media.model_copy(update={"frame_size": self.video.frame_size})
        self.version = f"{self.video.version}+{self.text.version}"
        self.dim = self.video.dim + self.text.dim

    def warmup(self) -> None:
        self.video.warmup()
        self.text.warmup()

    def embed_batch(self, items: Sequence[tuple[np.ndarray, str]]) -> list[Embedded]:
        """items: (keyframes (K, S, S, 3) uint8, description text) per video."""
        visual, probs = self.video.embed([frames for frames, _ in items])
        text = self.text.embed([t for _, t in items])
        fused = fuse(visual, text, self.settings.text_weight)
        out = []
        for i in range(len(items)):
            topic, score = top_topic(probs[i], self.video.topics)
            out.append(Embedded(fused[i], visual[i], topic, score))
        return out

    def embed_files(self, paths: Sequence[Path], texts: Sequence[str], artefacts: Path | None = None) -> list[tuple[Analysis, Embedded]]:
        """The service's path without the bus: analyse each file, embed them in batches."""
        analyses = [analyse(p, self.media, artefacts) for p in paths]
        results: list[Embedded] = []
        step = self.settings.max_batch
        for start in range(0, len(analyses), step):
            chunk = [(a.keyframes.frames, t) for a, t in zip(analyses[start:start + step], texts[start:start + step])]
            results += self.embed_batch(chunk)
        return list(zip(analyses, results))
