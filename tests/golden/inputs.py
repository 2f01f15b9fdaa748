from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).parent / "video_encoder.json"


def golden_frames() -> np.ndarray:
    rng = np.random.default_rng(1234)
    frames = rng.random((3, 8, 3, 64, 64), dtype=np.float32)
    frames[1] = np.linspace(0, 1, 64, dtype=np.float32)[None, None, None, :]  # a smooth gradient clip
    return frames


def golden_mask() -> np.ndarray:
    mask = np.ones((3, 8), np.float32)
    mask[2, 5:] = 0  # a short clip, padded
    return mask
