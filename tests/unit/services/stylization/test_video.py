"""Whole-video processing and temporal stability, on clips made on the spot."""

from __future__ import annotations

import av
import numpy as np
import pytest

from services.stylization.core.temporal import FlickerReducer, temporal_error
from services.stylization.core.video import process_video
from shared.media import MediaError, probe
from shared.settings import MediaSettings
from tests.media_files import good_clip, hour_long, no_duration, text_file, truncated


def decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_output_keeps_frames_duration_and_the_audio_stream(tmp_path):
    src = good_clip(tmp_path, seconds=2.0)
    seen: list[float] = []
    result = process_video(src, tmp_path / "out.mp4", lambda frames: [255 - f for f in frames], batch=5,
                           media=MediaSettings(), progress=seen.append)
    before, after = probe(src, MediaSettings()), probe(result.path, MediaSettings())
    assert result.frames == len(decoded(src)) == len(decoded(result.path))
    assert abs(after.duration_s - before.duration_s) <= 1 / before.fps + 1e-6
    assert after.has_audio and result.audio == "copied" and after.codec == "h264"
    assert seen == sorted(seen) and seen[-1] == 1.0
    with av.open(str(src)) as a, av.open(str(result.path)) as b:  # audio copied, not re-encoded
        pa = [bytes(p) for p in a.demux(audio=0) if p.size]
        pb = [bytes(p) for p in b.demux(audio=0) if p.size]
        assert pa == pb
    first_in, first_out = decoded(src)[10].astype(int), decoded(result.path)[10].astype(int)
    assert np.abs((255 - first_in) - first_out).mean() < 6  # the transform was applied (H.264 loss aside)


def test_upscaled_output_has_twice_the_size(tmp_path):
    src = good_clip(tmp_path, seconds=1.0)
    up = lambda frames: [np.repeat(np.repeat(f, 2, 0), 2, 1) for f in frames]  # noqa: E731
    result = process_video(src, tmp_path / "up.mp4", up, scale=2, media=MediaSettings())
    info, out = probe(src, MediaSettings()), probe(result.path, MediaSettings())
    assert (out.width, out.height) == (info.width * 2, info.height * 2)


@pytest.mark.parametrize("make,reason", [(text_file, "not_a_video"), (truncated, None)])
def test_bad_videos_raise_media_errors_and_leave_no_output(tmp_path, make, reason):
    src = make(tmp_path)
    dst = tmp_path / "out.mp4"
    with pytest.raises(MediaError) as err:
        process_video(src, dst, lambda f: f, media=MediaSettings())
    if reason:
        assert err.value.reason == reason
    assert not dst.exists() and not list(tmp_path.glob("*.part"))


def test_duration_limits_apply_before_decoding(tmp_path):
    with pytest.raises(MediaError, match="too_long"):
        process_video(hour_long(tmp_path), tmp_path / "o.mp4", lambda f: f, media=MediaSettings())
    with pytest.raises(MediaError, match="stylization limit"):
        process_video(good_clip(tmp_path, seconds=2.0), tmp_path / "o.mp4", lambda f: f, media=MediaSettings(),
                      max_duration_s=1.0)


def test_a_file_without_a_duration_is_refused_once_decoded_time_passes_the_limit(tmp_path):
    """Two hours of Matroska that state no duration pass the check before decoding (0.0 s claimed);
    the frames' timestamps stop it at the stylization limit, before the transform sees past it."""
    src = no_duration(tmp_path, minutes=120)
    with av.open(str(src)) as container:
        assert container.duration is None
    seen: list[int] = []

    def count(frames):
        seen.append(len(frames))
        return frames

    dst = tmp_path / "o.mp4"
    with pytest.raises(MediaError) as err:
        process_video(src, dst, count, batch=1, media=MediaSettings(), max_duration_s=120)
    assert err.value.reason == "too_long"
    assert "stylization limit of 120 s" in err.value.detail and "no duration" in err.value.detail
    assert sum(seen) <= 3  # the frames at 0, 60 and 120 s, no more
    assert not dst.exists() and not list(tmp_path.glob("*.part"))


def test_flicker_reduction_lowers_temporal_error_of_a_flickering_transform(tmp_path):
    frames = decoded(good_clip(tmp_path, seconds=1.0))[:12]
    rng = np.random.default_rng(0)
    flicker = [np.clip(f.astype(int) + rng.integers(-40, 40, size=(1, 1, 3)) + rng.integers(-25, 25, f.shape), 0, 255)
               .astype(np.uint8) for f in frames]  # per-frame colour shifts and noise, as a style net gives
    reducer = FlickerReducer(0.7)
    steadied = [reducer(i, o) for i, o in zip(frames, flicker)]
    assert temporal_error(frames, steadied) < 0.7 * temporal_error(frames, flicker)
    assert temporal_error(frames, frames) < temporal_error(frames, flicker)


def test_flicker_reducer_off_returns_frames_unchanged(tmp_path):
    frames = decoded(good_clip(tmp_path, seconds=0.5))[:4]
    reducer = FlickerReducer(0.0)
    assert all(np.array_equal(reducer(f, 255 - f), 255 - f) for f in frames)
