"""Safe media handling with PyAV (decode, audio) and OpenCV (image ops).

One streaming pass over a video picks keyframes (scene changes plus uniform samples, at most
K), a thumbnail and scene statistics without holding the video in memory; audio is copied out
without re-encoding and summarised by a few descriptors. Anything wrong with a file raises
:class:`MediaError` with a reason from a fixed set (a metric label) and a readable detail.

The duration limit is checked twice: against the container's claim before decoding (cheap, and
enough for honest files), and against the time actually decoded, read off the frames'
timestamps (:class:`DecodedTime`), because a container may state no duration at all (a Matroska
file written as a live stream) or a wrong one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from shared.settings import MediaSettings

GRAY_SIZE = (32, 18)  # frame size used for scene-change scores


class MediaError(ValueError):
    """A file that cannot or must not be processed; ``reason`` is one of REASONS."""

    REASONS = ("empty_file", "file_too_large", "not_a_video", "no_video_stream", "too_long",
               "resolution_too_large", "no_frames", "decode_error")

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in self.REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class MediaInfo:
    path: str
    size_bytes: int
    container: str
    duration_s: float
    width: int
    height: int
    fps: float
    codec: str
    has_audio: bool


@dataclass
class Keyframes:
    """What one pass over a video yields."""

    frames: np.ndarray  # (K, S, S, 3) uint8 RGB, letterboxed
    times_s: list[float]
    scene_changes: int
    frames_decoded: int
    thumbnail: np.ndarray | None = None  # RGB uint8
    extra: dict = field(default_factory=dict)
    duration_s: float = 0.0
    """Time decoded: the last frame's timestamp plus one frame (whatever the container claims)."""


class StreamTime:
    """Seconds from a stream's start for a frame's or packet's pts; time base and start are read once
    (``frame.time`` goes through Fractions: slow per frame)."""

    def __init__(self, stream: Any) -> None:
        self.base = float(stream.time_base or 0)
        self.start = stream.start_time or 0

    def of(self, pts: int | None) -> float | None:
        """The time of ``pts``; None when the stream gives no timestamps."""
        return (pts - self.start) * self.base if pts is not None and self.base else None


class DecodedTime:
    """How far decoding has got, by the frames' timestamps; refuses once that passes the limit.

    The container's duration is a claim: it may be missing (``0.0`` from :func:`probe`) or wrong.
    Call :meth:`check` with each decoded frame's time; it raises ``MediaError("too_long")`` as
    soon as a frame starts past ``limit_s``, so no more than the limit is ever decoded (plus the
    frames the decoder had buffered).
    """

    def __init__(self, limit_s: float, claimed_s: float = 0.0, fps: float = 0.0, what: str = "the limit") -> None:
        self.limit_s, self.claimed_s, self.what = limit_s, claimed_s, what
        self.frame_s = 1.0 / fps if fps and fps > 0 else 1.0 / 25
        self.last_s = 0.0

    def check(self, t: float) -> float:
        if t > self.limit_s:
            claim = (f"the container claims {self.claimed_s:.1f} s" if self.claimed_s > 0
                     else "the container states no duration")
            raise MediaError("too_long", f"decoding passed {t:.1f} s of video, over {self.what} of "
                                         f"{self.limit_s:.0f} s ({claim})")
        self.last_s = max(self.last_s, t)
        return t

    @property
    def duration_s(self) -> float:
        return self.last_s + self.frame_s


def probe(path: str | Path, settings: MediaSettings) -> MediaInfo:
    """Open the container and check it against the limits before any frame is decoded."""
    path = str(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise MediaError("not_a_video", f"cannot read file: {exc.strerror}") from exc
    if size == 0:
        raise MediaError("empty_file", "the file is empty (0 bytes)")
    if size > settings.max_file_bytes:
        raise MediaError("file_too_large", f"{size} bytes > limit {settings.max_file_bytes}")
    try:
        with av.open(path, timeout=settings.open_timeout_s) as container:
            if not container.streams.video:
                kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
                raise MediaError("no_video_stream", f"the file has no video stream (streams: {kinds})")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            duration = _duration(container, stream)
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
            info = MediaInfo(path, size, container.format.name, duration, width, height, fps,
                             stream.codec_context.name, bool(container.streams.audio))
    except MediaError:
        raise
    except (av.error.InvalidDataError, av.error.EOFError) as exc:
        raise MediaError("not_a_video", f"not a readable media container (corrupt, truncated or not media): {exc}") from exc
    except av.error.FFmpegError as exc:
        raise MediaError("not_a_video", f"cannot open: {exc}") from exc
    if width <= 0 or height <= 0:
        raise MediaError("no_frames", "the video stream has no frame size")
    if width * height > settings.max_pixels:
        raise MediaError("resolution_too_large", f"{width}x{height} exceeds {settings.max_pixels} pixels")
    if duration > settings.max_duration_s:
        raise MediaError("too_long", f"{duration:.0f} s exceeds the limit of {settings.max_duration_s:.0f} s")
    return info


def _duration(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return 0.0


def luma_thumb(frame: av.VideoFrame) -> np.ndarray:
    """A tiny grey version of a frame for scene-change scores, read straight off the luma plane."""
    if frame.format.name.startswith(("yuv", "yuvj", "nv12", "gray")):
        plane = frame.planes[0]
        y = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]
        return cv2.resize(y, GRAY_SIZE, interpolation=cv2.INTER_NEAREST)
    return frame.reformat(width=GRAY_SIZE[0], height=GRAY_SIZE[1], format="gray").to_ndarray()


def scene_score(current: np.ndarray, previous: np.ndarray | None) -> float:
    """Mean absolute difference of two small grey frames, 0..1."""
    if previous is None:
        return 0.0
    return cv2.norm(current, previous, cv2.NORM_L1) / (current.size * 255.0)


def fit(h: int, w: int, size: int) -> tuple[int, int]:
    scale = size / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def pad_square(resized: np.ndarray, size: int) -> np.ndarray:
    nh, nw = resized.shape[:2]
    out = np.zeros((size, size, 3), np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top:top + nh, left:left + nw] = resized
    return out


def letterbox(img: np.ndarray, size: int) -> np.ndarray:
    """Fit an RGB image into a size x size square, aspect kept, black bars around."""
    nh, nw = fit(*img.shape[:2], size)
    return pad_square(cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA), size)


def letterbox_frame(frame: av.VideoFrame, size: int) -> np.ndarray:
    """Like :func:`letterbox`, scaling inside FFmpeg (no full-size RGB copy)."""
    nh, nw = fit(frame.height, frame.width, size)
    return pad_square(frame.reformat(width=nw, height=nh, format="rgb24", interpolation="AREA").to_ndarray(), size)


def cover(h: int, w: int, size: int) -> tuple[int, int]:
    """The size that covers a size x size square, aspect kept."""
    scale = size / min(h, w)
    return max(size, round(h * scale)), max(size, round(w * scale))


def crop_frame(frame: av.VideoFrame, size: int) -> np.ndarray:
    """The centre size x size square, after scaling the shorter side to ``size`` inside FFmpeg (the
    usual ImageNet evaluation view: what a classifier was trained to see)."""
    nh, nw = cover(frame.height, frame.width, size)
    img = frame.reformat(width=nw, height=nh, format="rgb24", interpolation="AREA").to_ndarray()
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(img[top:top + size, left:left + size])


def square_frame(frame: av.VideoFrame, size: int, how: str) -> np.ndarray:
    return crop_frame(frame, size) if how == "crop" else letterbox_frame(frame, size)


def _targets(duration_s: float, k: int) -> list[float]:
    return [(i + 0.5) * duration_s / k for i in range(k)]


class _StrideSamples:
    """Evenly spaced samples of a video of unknown length: every ``step`` seconds, and when 2K are
    held, every other one is dropped and the step doubles; at the end K are picked evenly."""

    def __init__(self, k: int, step_s: float = 0.25) -> None:
        self.k, self.step, self.next_t = k, step_s, 0.0
        self.items: list[tuple[float, np.ndarray]] = []

    def wants(self, t: float) -> bool:
        return t >= self.next_t

    def add(self, t: float, img: np.ndarray) -> None:
        self.items.append((t, img))
        if len(self.items) >= 2 * self.k:
            self.items = self.items[::2]
            self.step *= 2
        self.next_t = self.items[-1][0] + self.step

    def pick(self) -> list[tuple[float, np.ndarray]]:
        n = len(self.items)
        if n <= self.k:
            return list(self.items)
        return [self.items[min(n - 1, int((i + 0.5) * n / self.k))] for i in range(self.k)]


def extract_keyframes(info: MediaInfo, settings: MediaSettings) -> Keyframes:
    """One decoding pass: scene-change frames plus uniform samples, at most ``settings.keyframes``.

    Decoding stops with ``MediaError("too_long")`` once the frames' timestamps pass
    ``settings.max_duration_s``, whatever duration the container claims (or when it claims none).
    """
    k, size = settings.keyframes, settings.frame_size
    known = info.duration_s > 0
    duration = info.duration_s if known else 1.0
    targets = _targets(duration, k)
    stride = None if known else _StrideSamples(k)
    clock = DecodedTime(settings.max_duration_s, info.duration_s, info.fps)
    uniform: list[tuple[float, np.ndarray]] = []
    cuts: list[tuple[float, float, np.ndarray]] = []  # (score, time, frame)
    thumb_at = duration / 3
    thumbnail = None
    prev = None
    decoded = 0
    scene_changes = 0
    th_w = settings.thumbnail_width
    th_h = max(2, round(info.height * th_w / info.width / 2) * 2)
    try:
        with av.open(info.path, timeout=settings.open_timeout_s) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream_time = StreamTime(stream)
            for frame in container.decode(stream):
                decoded += 1
                t = stream_time.of(frame.pts)
                clock.check(decoded / (info.fps or 25) if t is None else t)
                gray = luma_thumb(frame)
                score = scene_score(gray, prev)
                prev = gray
                if stride is not None:
                    want_uniform = stride.wants(t)
                else:
                    want_uniform = len(uniform) < k and t >= targets[len(uniform)]
                is_cut = score >= settings.scene_threshold
                if is_cut:
                    scene_changes += 1
                if thumbnail is None and t >= thumb_at:
                    thumbnail = frame.reformat(width=th_w, height=th_h, format="rgb24").to_ndarray()
                if want_uniform or (is_cut and (len(cuts) < k or score > cuts[0][0])):
                    img = square_frame(frame, size, settings.frame_fit)
                    if want_uniform:
                        if stride is not None:
                            stride.add(t, img)
                        else:
                            uniform.append((t, img))
                    if is_cut:
                        cuts.append((score, t, img))
                        cuts.sort(key=lambda c: c[0])
                        del cuts[:-k]
                if decoded > settings.max_frames:
                    break
    except av.error.FFmpegError as exc:
        if decoded == 0:
            raise MediaError("decode_error", f"no frame could be decoded: {exc}") from exc
    if decoded == 0:
        raise MediaError("no_frames", "the video stream holds no decodable frame")
    if stride is not None:
        uniform = stride.pick()
    chosen = _merge(uniform, cuts, k)
    if not chosen:
        raise MediaError("no_frames", "no keyframe could be selected")
    times = [t for t, _ in chosen]
    frames = np.stack([img for _, img in chosen])
    return Keyframes(frames, times, scene_changes, decoded, thumbnail, duration_s=clock.duration_s)


def _merge(uniform: list[tuple[float, np.ndarray]], cuts: list[tuple[float, float, np.ndarray]], k: int):
    """Scene starts first (up to half of K), uniform samples fill the rest; in time order."""
    picked = [(t, img) for _, t, img in sorted(cuts, key=lambda c: -c[0])[: k // 2]]
    for t, img in uniform:
        if len(picked) >= k:
            break
        if all(abs(t - p) > 1e-3 for p, _ in picked):
            picked.append((t, img))
    return sorted(picked, key=lambda p: p[0])


def save_thumbnail(image: np.ndarray, path: Path, quality: int = 85) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return path


def extract_audio(info: MediaInfo, out_dir: Path, stem: str, max_s: float | None = None) -> Path | None:
    """Copy the first audio stream into its own file without re-encoding; None when there is none.

    With ``max_s``, packets that start later than that are left out (an audio track longer than
    the duration limit is cut there, as the video would have been refused)."""
    if not info.has_audio:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    with av.open(info.path) as src:
        a_in = src.streams.audio[0]
        ext = {"aac": "m4a", "mp3": "mp3", "opus": "ogg", "vorbis": "ogg", "flac": "flac"}.get(a_in.codec_context.name, "mka")
        path = out_dir / f"{stem}.{ext}"
        audio_time = StreamTime(a_in)
        with av.open(str(path), "w") as dst:
            a_out = dst.add_stream_from_template(a_in)
            for packet in src.demux(a_in):
                if packet.dts is None:
                    continue
                t = audio_time.of(packet.pts)
                if max_s is not None and t is not None and t > max_s:
                    break
                packet.stream = a_out
                dst.mux(packet)
    return path


def audio_descriptors(path: str | Path, max_seconds: float = 30.0, rate: int = 16000) -> dict[str, float]:
    """RMS loudness (dBFS), zero-crossing rate and spectral centroid (Hz) of the first seconds."""
    chunks = []
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return {}
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        got = 0
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                arr = out.to_ndarray().reshape(-1)
                chunks.append(arr)
                got += arr.size
            if got >= max_seconds * rate:
                break
    if not chunks:
        return {}
    x = np.concatenate(chunks)[: int(max_seconds * rate)].astype(np.float32)
    rms = float(np.sqrt(np.mean(x ** 2)) + 1e-12)
    zcr = float(np.mean(np.abs(np.diff(np.sign(x))) > 0))
    spectrum = np.abs(np.fft.rfft(x[: min(len(x), rate * 5)]))
    freqs = np.fft.rfftfreq(min(len(x), rate * 5), 1 / rate)
    centroid = float((spectrum * freqs).sum() / (spectrum.sum() + 1e-12))
    return {"rms_dbfs": round(20 * math.log10(rms), 2), "zero_crossing_rate": round(zcr, 4),
            "spectral_centroid_hz": round(centroid, 1)}
