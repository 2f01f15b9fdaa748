"""Small synthetic clips made with PyAV (H.264 + AAC): for the demo, tests and benchmarks."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def frame_at(index: int, fps: int, width: int, height: int, hue: float) -> np.ndarray:
    """A moving bright square over a horizontal gradient tinted by ``hue`` (0..1)."""
    t = index / fps
    x = np.linspace(0, 1, width, dtype=np.float32)
    base = np.array([hue, 1 - hue, 0.5 + 0.5 * np.sin(2 * np.pi * hue)], dtype=np.float32)
    img = (np.outer(np.ones(height, np.float32), x)[..., None] * base * 200 + 30).astype(np.uint8)
    side = max(4, min(width, height) // 5)
    cx = int((0.5 + 0.4 * np.sin(2 * np.pi * 0.5 * t)) * (width - side))
    cy = int((0.5 + 0.4 * np.cos(2 * np.pi * 0.5 * t)) * (height - side))
    img[cy:cy + side, cx:cx + side] = 255
    return img


def write_clip(path: Path, seconds: float = 2.0, fps: int = 24, width: int = 320, height: int = 180,
               hue: float = 0.3, audio_hz: float | None = 440.0, gop: int = 24) -> Path:
    """Write an mp4 with H.264 video and (unless ``audio_hz`` is None) an AAC sine tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = max(1, int(round(seconds * fps)))
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"g": str(gop), "preset": "veryfast"}
        audio = None
        if audio_hz is not None:
            audio = out.add_stream("aac", rate=44100)
            audio.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_at(i, fps, width, height, hue), format="rgb24")
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if audio is not None:
            rate, chunk = 44100, 1024
            total = int(seconds * rate)
            for start in range(0, total, chunk):
                n = min(chunk, total - start)
                t = (np.arange(start, start + n) / rate).astype(np.float32)
                samples = (0.2 * np.sin(2 * np.pi * audio_hz * t)).astype(np.float32)[None, :]
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                out.mux(audio.encode(frame))
            out.mux(audio.encode())
    return path
