"""One video vector from its visual and text embeddings."""

from __future__ import annotations

import numpy as np


def fuse(visual: np.ndarray, text: np.ndarray, text_weight: float) -> np.ndarray:
    """Weighted concatenation of the two L2-normalised parts, normalised again.

    With weights a = sqrt(1 - w) and b = sqrt(w), the cosine of two fused vectors is
    (1 - w) * cos(visual) + w * cos(text): the weight is the share of the similarity that text
    decides. A missing text (zeros) leaves the visual part alone.
    """
    visual = visual / (np.linalg.norm(visual, axis=-1, keepdims=True) + 1e-12)
    norm_t = np.linalg.norm(text, axis=-1, keepdims=True)
    text = np.where(norm_t > 0, text / (norm_t + 1e-12), 0.0)
    fused = np.concatenate([np.sqrt(1 - text_weight) * visual, np.sqrt(text_weight) * text], axis=-1)
    return (fused / (np.linalg.norm(fused, axis=-1, keepdims=True) + 1e-12)).astype(np.float32)
