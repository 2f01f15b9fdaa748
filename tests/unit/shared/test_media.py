import numpy as np
import pytest

from shared.corpus import spec_for, write_clip
from shared.media import MediaError, audio_descriptors, extract_audio, extract_keyframes, letterbox, probe
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
        extract_keyframes(probe(path))
    assert err.value.reason == expected.split("(")[0]
    assert err.value.detail


def test_probe_reads_the_container(clip):
    info = probe(clip)
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
    from shared.corpus import write_video

    path = write_video(folder / "cut.mp4", np.concatenate([a, b]), 24, 160, 90)
    kf = extract_keyframes(probe(path), MediaSettings(keyframes=4))
    assert kf.scene_changes == 1
    assert any(abs(t - 1.0) < 0.05 for t in kf.times_s), kf.times_s


def test_audio_is_copied_without_reencoding_and_described(clip, tmp_path):
    info = probe(clip)
    out = extract_audio(info, tmp_path, "x")
    assert out is not None and out.suffix == ".m4a" and out.stat().st_size > 0
    features = audio_descriptors(out)
    assert set(features) == {"rms_dbfs", "zero_crossing_rate", "spectral_centroid_hz"}
    assert -40 < features["rms_dbfs"] < 0


def test_no_audio_track_means_no_audio_file(folder, tmp_path):
    path = write_clip(spec_for(2, seed=4, seconds=1.0), folder, with_audio=False)
    assert extract_audio(probe(path), tmp_path, "y") is None


def test_letterbox_keeps_aspect():
    img = np.full((50, 100, 3), 255, np.uint8)
    out = letterbox(img, 40)
    assert out.shape == (40, 40, 3)
    assert out[0].max() == 0 and out[20].min() == 255
