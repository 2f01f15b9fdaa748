"""Good and bad media files, made on the spot with PyAV (no downloads, nothing committed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from devkit.corpus import spec_for, write_clip, write_video


def good_clip(folder: Path, index: int = 0, seconds: float = 2.0, seed: int = 3) -> Path:
    return write_clip(spec_for(index, seed=seed, seconds=seconds), folder)


def zero_byte(folder: Path) -> Path:
    path = folder / "empty.mp4"
    path.write_bytes(b"")
    return path


def text_file(folder: Path) -> Path:
    path = folder / "notes.mp4"
    path.write_text("this is not a video, just text with an .mp4 name\n" * 20)
    return path


def truncated(folder: Path) -> Path:
    src = good_clip(folder, 1)
    data = src.read_bytes()
    path = folder / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    return path


def audio_only(folder: Path) -> Path:
    path = folder / "audio_only.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=22050)
        stream.layout = "mono"
        t = np.arange(22050) / 22050
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 22050, start, Fraction(1, 22050)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def zero_frames(folder: Path) -> Path:
    """An mp4 with a declared video stream that holds no frame (only its audio has packets)."""
    path = folder / "zero_frames.mkv"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = out.add_stream("aac", rate=22050)
        audio.layout = "mono"
        samples = np.zeros(22050, np.float32)
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 22050, start, Fraction(1, 22050)
            out.mux(audio.encode(frame))
        out.mux(audio.encode())
        out.mux(video.encode())
    return path


def huge_resolution(folder: Path) -> Path:
    """One 8K frame (7680x4320)."""
    img = np.zeros((4320, 7680, 3), np.uint8)
    img[::64] = 255
    return write_video(folder / "8k.mp4", [img], 1, 7680, 4320)


def hour_long(folder: Path) -> Path:
    """An hour of tiny video at one frame per minute: cheap to make, long by its metadata."""
    path = folder / "hour.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(1, 60))
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(61):
            img = np.full((32, 32, 3), (i * 4) % 255, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


def no_duration(folder: Path, minutes: int = 120, name: str = "no_duration.mkv") -> Path:
    """Matroska written as a live stream (no Duration element, no cues): ``minutes`` of tiny video at
    one frame per minute. Its header claims nothing; only the frames' timestamps tell its length."""
    path = folder / name
    with av.open(str(path), "w", format="matroska", options={"live": "1"}) as out:
        stream = out.add_stream("libx264", rate=Fraction(1, 60))
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(minutes + 1):
            img = np.full((32, 32, 3), (i * 4) % 255, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


BAD_FILES = {
    "empty_file": zero_byte,
    "not_a_video(text)": text_file,
    "not_a_video(truncated)": truncated,
    "no_video_stream": audio_only,
    "no_frames": zero_frames,
    "resolution_too_large": huge_resolution,
    "too_long": hour_long,
    "too_long(no duration in the header)": no_duration,
}
