"""What a generation request produces, as plain functions of (generator, request): covers, frames, clips.

Everything is deterministic: latents come from the request's seed, upscaling and encoding have
no randomness (x264 runs single-threaded so its output does not depend on thread timing), so the
same request and seed give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from services.generation.core.latent import latents, slerp

KEYFRAME_EVERY_S = 1.0  # a clip walks through one seeded latent per second


def upscale(images: np.ndarray, size: int) -> list[np.ndarray]:
    """(N, s, s, 3) uint8 -> N images of size x size (Lanczos, then a light unsharp mask)."""
    out = []
    for img in images:
        big = cv2.resize(img, (size, size), interpolation=cv2.INTER_LANCZOS4) if img.shape[0] != size else img
        if size > img.shape[0]:
            soft = cv2.GaussianBlur(big, (0, 0), size / img.shape[0] / 2)
            big = cv2.addWeighted(big, 1.4, soft, -0.4, 0)
        out.append(big)
    return out


def images(generator, topic: int, count: int, seed: int, size: int, batch: int = 64) -> list[np.ndarray]:
    z = latents(seed, count, generator.z_dim)
    out: list[np.ndarray] = []
    for start in range(0, count, batch):
        part = z[start:start + batch]
        out += upscale(generator.generate(np.full(len(part), topic, np.int64), part), size)
    return out


def walk(generator, topic: int, seed: int, duration_s: float, fps: int, size: int, batch: int = 32) -> Iterator[np.ndarray]:
    """Frames of a smooth latent walk: spherical interpolation between one seeded latent per second."""
    n = max(1, round(duration_s * fps))
    keys = latents(seed, int(np.ceil(duration_s / KEYFRAME_EVERY_S)) + 1, generator.z_dim)
    positions = np.arange(n) / fps / KEYFRAME_EVERY_S
    for start in range(0, n, batch):
        z = np.stack([slerp(keys[int(p)], keys[int(p) + 1], p - int(p)) for p in positions[start:start + batch]])
        yield from upscale(generator.generate(np.full(len(z), topic, np.int64), z.astype(np.float32)), size)


def write_image(image: np.ndarray, path: Path, quality: int = 92) -> Path:
    """JPEG for covers (what platforms serve), PNG for frames (lossless), by the path's suffix."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError(f"could not encode {path.name}")
    path.write_bytes(data.tobytes())
    return path


def write_clip(frames: Iterator[np.ndarray], path: Path, fps: int, size: int, crf: int = 20) -> int:
    count = 0
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": str(crf), "threads": "1"}
        for img in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
            count += 1
        out.mux(stream.encode())
    return count
