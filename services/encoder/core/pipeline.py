"""From a local video file to what the encoder stores: keyframes, audio, thumbnail, vector."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from services.encoder.core.covers import save_covers
from shared.media import (Keyframes, MediaInfo, audio_descriptors, extract_audio, extract_keyframes, probe,
                          save_thumbnail)
from shared.settings import MediaSettings


@dataclass
class Analysis:
    """Everything decoded from one file, before the model runs."""

    info: MediaInfo
    keyframes: Keyframes
    thumbnail: Path | None = None
    covers: list[str] = field(default_factory=list)  # cover candidates, best first, relative to the artefacts folder
    audio: Path | None = None
    audio_features: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def analyse(path: Path, settings: MediaSettings, artefacts: Path | None = None, stem: str | None = None) -> Analysis:
    """Probe, decode keyframes, and (when ``artefacts`` is given) write thumbnail, cover candidates and audio there.

    A container that states no duration gets the decoded one (decoding refuses past the limit)."""
    t0 = time.perf_counter()
    info = probe(path, settings)
    keyframes = extract_keyframes(info, settings)
    if info.duration_s <= 0:
        info = replace(info, duration_s=round(keyframes.duration_s, 3))
    t1 = time.perf_counter()
    result = Analysis(info, keyframes, seconds={"decode": t1 - t0})
    if artefacts is not None:
        stem = stem or path.stem
        if keyframes.thumbnail is not None:
            result.thumbnail = save_thumbnail(keyframes.thumbnail, artefacts / "thumbnails" / f"{stem}.jpg")
        result.covers = [f"covers/{name}" for name, _ in save_covers(keyframes.frames, artefacts / "covers", stem)]
        result.audio = extract_audio(info, artefacts / "audio", stem, max_s=settings.max_duration_s)
        if result.audio is not None:
            result.audio_features = audio_descriptors(result.audio)
        result.seconds["artefacts"] = time.perf_counter() - t1
    return result


def duplicate_of(hits: Sequence[tuple[str, float]], self_id: str, threshold: float) -> str | None:
    """The nearest other video when it is at least ``threshold`` similar."""
    for other, score in hits:
        if other != self_id:
            return other if score >= threshold else None
    return None


def top_topic(probs: np.ndarray, topics: Sequence[str]) -> tuple[str, float]:
    i = int(np.argmax(probs))
    return topics[i], float(probs[i])
