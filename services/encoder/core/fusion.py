"""One video vector from its parts (visual features, concepts, words)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shared.concepts import unit


def fuse(parts: Sequence[tuple[np.ndarray, float]]) -> np.ndarray:
    """Concatenate the parts, each made unit and scaled by sqrt(share), and normalise again.

    With shares summing to 1, the cosine of two fused vectors is the share-weighted sum of the
    parts' cosines: a share is the part of the similarity that part decides. A missing part (zeros)
    drops out and leaves the others' proportions alone.
    """
    return unit(np.concatenate([np.sqrt(share) * unit(np.asarray(part, np.float32)) for part, share in parts], axis=-1))
