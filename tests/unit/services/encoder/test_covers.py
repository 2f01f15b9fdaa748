"""Cover candidates: black, blurred and over-exposed keyframes never reach the top three."""

import cv2
import numpy as np
import pytest

from services.encoder.core.covers import rank_covers, save_covers


def scene(seed: int, size: int = 224) -> np.ndarray:
    """A frame with content: a lit gradient, coloured shapes with hard edges, and fine texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([60 + 120 * x, 70 + 100 * y, 90 + 60 * (1 - x)], -1)
    img = np.ascontiguousarray(base.astype(np.uint8))
    for _ in range(12):
        colour = tuple(int(c) for c in rng.integers(20, 235, 3))
        p = rng.integers(0, size, 2)
        if rng.random() < 0.5:
            cv2.rectangle(img, tuple(int(v) for v in p), tuple(int(v) for v in p + rng.integers(10, 60, 2)), colour, -1)
        else:
            cv2.circle(img, tuple(int(v) for v in p), int(rng.integers(5, 30)), colour, -1)
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def bad_frames(good: np.ndarray) -> dict[str, np.ndarray]:
    return {"black": np.zeros_like(good) + np.uint8(3),
            "blurred": cv2.GaussianBlur(good, (0, 0), 6),
            "over-exposed": np.clip(good.astype(np.int16) + 190, 0, 255).astype(np.uint8)}


@pytest.mark.parametrize("seed", range(5))
def test_no_black_blurred_or_overexposed_frame_in_the_top_three(seed):
    goods = [scene(seed * 10 + i) for i in range(4)]
    bad = bad_frames(goods[seed % 4])
    frames = goods[:2] + [bad["black"]] + goods[2:3] + [bad["blurred"], bad["over-exposed"]] + goods[3:]
    order = np.random.default_rng(seed).permutation(len(frames))
    shuffled = np.stack([frames[i] for i in order])
    bad_positions = {int(np.where(order == i)[0][0]) for i in (2, 4, 5)}
    ranked = rank_covers(shuffled)
    top3 = {c.index for c in ranked[:3]}
    assert not top3 & bad_positions
    assert all(c.unusable for c in ranked if c.index in bad_positions)
    reasons = " ".join(c.unusable for c in ranked if c.index in bad_positions)
    assert "dark" in reasons and "blurred" in reasons and "over-exposed" in reasons


def test_a_video_of_only_bad_frames_has_no_cover(tmp_path):
    good = scene(1)
    frames = np.stack(list(bad_frames(good).values()))
    assert save_covers(frames, tmp_path, "v1") == []


def test_save_covers_writes_the_best_frames_by_name(tmp_path):
    frames = np.stack([scene(i) for i in range(5)])
    saved = save_covers(frames, tmp_path / "covers", "vid", n=3)
    assert [name for name, _ in saved] == ["vid-1.jpg", "vid-2.jpg", "vid-3.jpg"]
    scores = [c.score for _, c in saved]
    assert scores == sorted(scores, reverse=True)
    for name, _ in saved:
        image = cv2.imread(str(tmp_path / "covers" / name))
        assert image is not None and image.shape[:2] == (224, 224)


def test_empty_keyframes_rank_nothing():
    assert rank_covers(np.zeros((0, 8, 8, 3), np.uint8)) == []
