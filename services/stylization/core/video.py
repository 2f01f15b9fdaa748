"""Whole-video processing: decode with PyAV, transform frames in batches, encode H.264, keep the audio.

Frames keep their timestamps (so fps, duration and variable frame rates survive); the audio
stream is copied packet for packet when MP4 can hold its codec, and re-encoded to AAC only when
it cannot. The caller's ``transform`` sees a list of RGB uint8 frames at a time and returns as
many frames, all of one size (``scale`` times the input's).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from shared.media import DecodedTime, MediaError, MediaInfo, StreamTime, probe
from shared.settings import MediaSettings

Transform = Callable[[list[np.ndarray]], list[np.ndarray]]
MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}


@dataclass(frozen=True)
class VideoResult:
    path: Path
    frames: int
    duration_s: float
    width: int
    height: int
    audio: str  # "copied", "re-encoded" or "none"
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def _even(n: int) -> int:
    return n - n % 2


def process_video(src: Path, dst: Path, transform: Transform, *, scale: int = 1, batch: int = 8, crf: int = 20,
                  media: MediaSettings, max_duration_s: float | None = None,
                  progress: Callable[[float], None] | None = None) -> VideoResult:
    """Write ``transform`` applied to every frame of ``src`` to ``dst`` (mp4, H.264, the source's audio).

    The duration limit holds for the time decoded, not only for the container's claim: once a
    frame's timestamp passes it, processing stops with ``MediaError("too_long")`` and nothing is
    written (a container may state no duration, or a wrong one). Audio past the limit is left out.
    """
    info: MediaInfo = probe(src, media)
    if max_duration_s is not None and info.duration_s > max_duration_s:
        raise MediaError("too_long", f"{info.duration_s:.1f} s exceeds the stylization limit of {max_duration_s:.0f} s")
    if max_duration_s is not None and max_duration_s < media.max_duration_s:
        clock = DecodedTime(max_duration_s, info.duration_s, info.fps, "the stylization limit")
    else:
        clock = DecodedTime(media.max_duration_s, info.duration_s, info.fps)
    started = time.perf_counter()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".part")
    width, height = _even(info.width * scale), _even(info.height * scale)
    frames = 0
    audio_mode = "none"
    try:
        with av.open(str(src), timeout=media.open_timeout_s) as inp, av.open(str(tmp), "w", format="mp4") as out:
            vin = inp.streams.video[0]
            vin.thread_type = "AUTO"
            vout = out.add_stream("libx264", rate=vin.average_rate or vin.guessed_rate or 24)
            vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
            vout.time_base = vin.time_base
            vout.codec_context.time_base = vin.time_base
            vout.options = {"preset": "veryfast", "crf": str(crf)}
            ain = inp.streams.audio[0] if inp.streams.audio else None
            aout = None
            if ain is not None:
                if ain.codec_context.name in MP4_AUDIO:
                    aout, audio_mode = out.add_stream_from_template(ain), "copied"
                else:
                    aout, audio_mode = out.add_stream("aac", rate=ain.codec_context.sample_rate or 44100), "re-encoded"
            pending: list[tuple[np.ndarray, int | None]] = []

            def flush() -> None:
                nonlocal frames
                last_pts = pending[-1][1]
                done = transform([img for img, _ in pending])
                for img, (_, pts) in zip(done, pending):
                    if img.shape[0] != height or img.shape[1] != width:
                        img = img[:height, :width]
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                    frame.pts, frame.time_base = pts, vin.time_base
                    out.mux(vout.encode(frame))
                frames += len(pending)
                pending.clear()
                if progress is not None and info.duration_s > 0 and last_pts is not None:
                    progress(min(1.0, float(last_pts * vin.time_base) / info.duration_s))

            video_time = StreamTime(vin)
            audio_time = StreamTime(ain) if ain is not None else None
            streams = [vin] + ([ain] if ain is not None else [])
            for packet in inp.demux(*streams):
                if packet.stream is ain:
                    t = audio_time.of(packet.pts)
                    if t is not None and t > clock.limit_s:
                        continue  # audio past the limit: the video stops there too
                    if audio_mode == "copied":
                        if packet.dts is not None:
                            packet.stream = aout
                            out.mux(packet)
                    else:
                        for aframe in packet.decode():
                            aframe.pts = None
                            out.mux(aout.encode(aframe))
                    continue
                for vframe in packet.decode():
                    if frames + len(pending) >= media.max_frames:
                        raise MediaError("too_long", f"more than {media.max_frames} frames")
                    t = video_time.of(vframe.pts)
                    clock.check((frames + len(pending)) / (info.fps or 25) if t is None else t)
                    pending.append((vframe.to_ndarray(format="rgb24"), vframe.pts))
                    if len(pending) >= batch:
                        flush()
            if pending:
                flush()
            out.mux(vout.encode())
            if aout is not None and audio_mode == "re-encoded":
                out.mux(aout.encode())
    except av.error.FFmpegError as exc:
        tmp.unlink(missing_ok=True)
        raise MediaError("decode_error", f"cannot decode {src.name}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if frames == 0:
        tmp.unlink(missing_ok=True)
        raise MediaError("no_frames", "the video has no decodable frames")
    tmp.replace(dst)
    if progress is not None:
        progress(1.0)
    return VideoResult(dst, frames, info.duration_s, width, height, audio_mode, time.perf_counter() - started)
