import numpy as np
import pytest

from devkit.corpus import spec_for, write_clip
from shared.media import (
    MediaError,
    audio_descriptors,
    extract_audio,
    extract_keyframes,
    letterbox,
    probe,
)
from shared.settings import MediaSettings
from tests import media_files


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def clip(folder):
    return media_files.good_clip(folder, 0, seconds=3.0)


@pytest.mark.parametrize("expected,make", list(media_files.BAD_FILES.items()))
def test_bad_files_fail_with_their_reason(folder, expected, make):
    path = make(folder)
    with pytest.raises(MediaError) as err:
        extract_keyframes(probe(path, MediaSettings()), MediaSettings())
    assert err.value.reason == expected.split("(")[0]
    assert err.value.detail


def test_probe_reads_the_container(clip):
    info = probe(clip, MediaSettings())
    assert (info.width, info.height) == (320, 180)
    assert info.duration_s == pytest.approx(3.0, abs=0.1)
    assert info.fps == pytest.approx(24) and info.has_audio and info.codec == "h264"


def test_keyframes_are_bounded_ordered_and_letterboxed(clip):
    settings = MediaSettings(keyframes=6, frame_size=48)
    kf = extract_keyframes(probe(clip, settings), settings)
    assert kf.frames.shape == (6, 48, 48, 3) and kf.frames.dtype == np.uint8
    assert kf.times_s == sorted(kf.times_s) and kf.times_s[-1] <= 3.0
    assert kf.frames_decoded == 72
    # 16:9 content in a square: black bars above and below, picture in the middle
    assert kf.frames[:, :8].max() == 0 and kf.frames[:, 20:28].max() > 0
    assert kf.thumbnail is not None and kf.thumbnail.shape[1] == settings.thumbnail_width


def test_scene_cuts_are_found_and_kept(folder):
    a, b = np.zeros((24, 90, 160, 3), np.uint8), np.full((24, 90, 160, 3), 200, np.uint8)
    from devkit.corpus import write_video

    path = write_video(folder / "cut.mp4", np.concatenate([a, b]), 24, 160, 90)
    kf = extract_keyframes(probe(path, MediaSettings()), MediaSettings(keyframes=4))
    assert kf.scene_changes == 1
    assert any(abs(t - 1.0) < 0.05 for t in kf.times_s), kf.times_s


def test_audio_is_copied_without_reencoding_and_described(clip, tmp_path):
    info = probe(clip, MediaSettings())
    out = extract_audio(info, tmp_path, "x")
    assert out is not None and out.suffix == ".m4a" and out.stat().st_size > 0
    features = audio_descriptors(out)
    assert set(features) == {"rms_dbfs", "zero_crossing_rate", "spectral_centroid_hz"}
    assert -40 < features["rms_dbfs"] < 0


def test_no_audio_track_means_no_audio_file(folder, tmp_path):
    path = write_clip(spec_for(2, seed=4, seconds=1.0), folder, with_audio=False)
    assert extract_audio(probe(path, MediaSettings()), tmp_path, "y") is None


def test_letterbox_keeps_aspect():
    img = np.full((50, 100, 3), 255, np.uint8)
    out = letterbox(img, 40)
    assert out.shape == (40, 40, 3)
    assert out[0].max() == 0 and out[20].min() == 255


def test_a_file_without_a_duration_is_refused_once_decoded_time_passes_the_limit(folder):
    """Two hours of Matroska whose header states no duration: the container's claim (none, 0.0)
    passes the check before decoding, so decoding itself must stop at the limit."""
    import av

    path = media_files.no_duration(folder, minutes=120)
    with av.open(str(path)) as container:
        assert container.duration is None and container.streams.video[0].duration is None
    settings = MediaSettings(max_duration_s=120)
    info = probe(path, settings)
    assert info.duration_s == 0.0  # nothing claimed, nothing refused yet
    with pytest.raises(MediaError) as err:
        extract_keyframes(info, settings)
    assert err.value.reason == "too_long"
    assert "120 s" in err.value.detail and "no duration" in err.value.detail, err.value.detail


def test_a_file_without_a_duration_under_the_limit_gets_its_decoded_duration_and_spread_keyframes(folder):
    path = media_files.no_duration(folder, minutes=9, name="nine_minutes.mkv")  # 10 frames, 0..540 s
    settings = MediaSettings(keyframes=4)
    info = probe(path, settings)
    assert info.duration_s == 0.0
    kf = extract_keyframes(info, settings)
    assert kf.frames_decoded == 10
    assert kf.duration_s == pytest.approx(600.0)  # the last frame at 540 s, shown for a minute
    assert len(kf.times_s) == 4 and kf.times_s[-1] >= 300, kf.times_s  # across the file, not its first second


def test_a_header_that_claims_less_than_the_frames_hold_does_not_help(folder):
    """A header that claims 10 s on an hour of frames: refused by the frames, not trusted."""
    from dataclasses import replace

    path = media_files.hour_long(folder)
    info = replace(probe(path, MediaSettings(max_duration_s=4000)), duration_s=10.0)  # the claim, forged
    with pytest.raises(MediaError, match=r"over the limit of 600 s \(the container claims 10.0 s\)"):
        extract_keyframes(info, MediaSettings(max_duration_s=600))



def test_centre_crop_keeps_the_middle_of_the_picture():
    import av

    from shared.media import crop_frame

    picture = np.zeros((180, 320, 3), np.uint8)
    picture[:, :, 0] = np.arange(320, dtype=np.uint16)[None, :] * 255 // 319  # red grows left to right
    square = crop_frame(av.VideoFrame.from_ndarray(picture, format="rgb24"), 90)
    assert square.shape == (90, 90, 3)
    red = square[:, :, 0].astype(np.float32)
    assert abs(red.mean() - 127) < 12 and 100 < red[:, -1].mean() - red[:, 0].mean() < 200  # the middle 9/16 of the width
