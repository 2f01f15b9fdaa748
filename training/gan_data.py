"""Training frames for the topic GAN: synthetic clips of devkit.corpus, rendered and cached as .npy.

For each topic, ``per_topic // frames_per_clip`` clips are drawn with ``spec_for(index, seed)``
(index = topic + 6 j, so each clip is of the wanted topic) and ``frames_per_clip`` frames are taken
at random times of each. Clips are rendered at 128x72 (16:9); each chosen frame is centre-cropped
to 72x72 and shrunk to 64x64 with cv2.INTER_AREA. A centre crop rather than a letterbox keeps
every generated pixel useful (no black bars for the GAN to learn) at the cost of the outer 22% of
the width on either side. The result is cached as ``var/gan_data/frames_<...>.npy`` of shape
(topics, per_topic, 64, 64, 3) uint8; topic ``k`` is row ``k`` (order of devkit.corpus.TOPICS).
Deterministic for a given seed. The seed must stay below 9001: evaluation holds out 9001 and up.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from devkit.corpus import TOPICS, frames, spec_for

CACHE_DIR = Path("var/gan_data")
HELD_OUT_SEED = 9001
CLIP_SECONDS, CLIP_FPS, CLIP_WIDTH, CLIP_HEIGHT = 4.0, 12, 128, 72


def to_square(frame: np.ndarray, size: int = 64) -> np.ndarray:
    """Centre-crop an (H, W, 3) frame to a square and resize it to (size, size, 3) with INTER_AREA."""
    h, w = frame.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = np.ascontiguousarray(frame[top:top + s, left:left + s])
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def clip_frames(index: int, seed: int, count: int, size: int = 64) -> np.ndarray:
    """``count`` frames at random (seeded) times of clip ``spec_for(index, seed)``, as (count, size, size, 3)."""
    spec = spec_for(index, seed, CLIP_SECONDS, CLIP_FPS, CLIP_WIDTH, CLIP_HEIGHT)
    total = int(round(spec.seconds * spec.fps))
    wanted = set(np.random.default_rng([seed, index, 7]).choice(total, size=count, replace=False).tolist())
    out = []
    for i, frame in enumerate(frames(spec)):
        if i in wanted:
            out.append(to_square(frame, size))
            if len(out) == count:
                break
    return np.stack(out)


def render(per_topic: int, seed: int, frames_per_clip: int = 2, size: int = 64, progress: bool = True) -> np.ndarray:
    """(topics, per_topic, size, size, 3) uint8 frames (no cache)."""
    clips = -(-per_topic // frames_per_clip)
    out = np.zeros((len(TOPICS), clips * frames_per_clip, size, size, 3), np.uint8)
    jobs = [(t, j) for j in range(clips) for t in range(len(TOPICS))]
    it = tqdm(jobs, desc=f"rendering GAN frames (seed {seed})", unit="clip") if progress else jobs
    for t, j in it:
        index = t + len(TOPICS) * j  # spec_for gives topic TOPICS[index % 6]
        out[t, j * frames_per_clip:(j + 1) * frames_per_clip] = clip_frames(index, seed, frames_per_clip, size)
    return out[:, :per_topic]


def frame_cache(per_topic: int = 1500, seed: int = 0, frames_per_clip: int = 2, size: int = 64,
                folder: Path = CACHE_DIR, progress: bool = True) -> np.ndarray:
    """The cached frames (rendered on first use); see the module docstring for the layout."""
    path = folder / f"frames_{size}_s{seed}_n{per_topic}_k{frames_per_clip}.npy"
    if path.exists():
        return np.load(path)
    data = render(per_topic, seed, frames_per_clip, size, progress)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, data)
    tmp.replace(path)
    return data
