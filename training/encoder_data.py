"""Keyframes of the corpus, extracted with the serving code path (shared.media), cached as .npz."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from devkit.corpus import TOPICS
from shared.media import extract_keyframes, probe
from shared.settings import MediaSettings

STORED_FRAMES = 16


def load_manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines() if line.strip()]


def keyframe_cache(folder: Path, frame_size: int, progress: bool = True) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(N, STORED_FRAMES, S, S, 3) uint8 frames, (N,) topic ids, and the manifest rows."""
    rows = load_manifest(folder)
    cache = folder / f"keyframes_{frame_size}_{STORED_FRAMES}.npz"
    if cache.exists():
        data = np.load(cache)
        if len(data["topics"]) == len(rows):
            return data["frames"], data["topics"], rows
    settings = MediaSettings(keyframes=STORED_FRAMES, frame_size=frame_size)
    it = rows
    if progress:
        from tqdm import tqdm

        it = tqdm(rows, desc=f"keyframes from {folder.name}", unit="clip")
    frames = []
    for row in it:
        kf = extract_keyframes(probe(folder / row["file"], settings), settings)
        f = kf.frames
        if len(f) < STORED_FRAMES:  # very short clip: repeat frames to fill
            f = f[np.linspace(0, len(f) - 1, STORED_FRAMES).round().astype(int)]
        frames.append(f)
    out = np.stack(frames)
    topics = np.array([TOPICS.index(r["topic"]) for r in rows], np.int64)
    np.savez(cache, frames=out, topics=topics)
    return out, topics, rows
