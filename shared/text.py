"""Text embedding (all-MiniLM-L6-v2, exported to ONNX at setup) for titles, tags and queries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from shared.inference import ModelError, OnnxModel, card_from_manifest
from shared.settings import ModelSettings

TEXT_DIR = "text"
MAX_TOKENS = 64


def text_model_dir(settings: ModelSettings) -> Path:
    return settings.cache_dir / TEXT_DIR


class TextEmbedder(OnnxModel):
    def __init__(self, settings: ModelSettings) -> None:
        folder = text_model_dir(settings)
        if not (folder / "manifest.json").exists():
            raise ModelError(f"the text model is not prepared in {folder}: run `clipstream models prepare` "
                             "(make setup does it)")
        super().__init__(card_from_manifest(folder / "manifest.json"), settings)
        self.dim = int(self.card.meta.get("dim", 384))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32, L2-normalised. An empty text embeds to zeros."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        encoded = self.tokenizer.encode_batch([t or "" for t in texts])
        ids = np.array([e.ids for e in encoded], np.int64)
        mask = np.array([e.attention_mask for e in encoded], np.int64)
        out = self.run({"input_ids": ids, "attention_mask": mask})[0].astype(np.float32)
        out[[not (t or "").strip() for t in texts]] = 0.0
        return out

    def warmup(self) -> None:
        self.embed(["warm up"])


def video_text(title: str, tags: Sequence[str]) -> str:
    """The text a video is described by: its title and its tags."""
    return " ".join([title.strip(), *(f"#{t}" for t in tags)]).strip()
