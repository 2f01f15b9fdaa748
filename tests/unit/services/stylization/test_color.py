from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.stylization.core.color import (
    LOOKS,
    OpError,
    adjust,
    apply_color,
    apply_enhance,
    apply_look,
    clahe,
    denoise,
    sharpen,
    upscale2x,
    white_balance,
)
from shared.events import ColorParams, EnhanceParams


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """A smooth colourful image with some texture, 48x64."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    base = np.stack([x * 4, y * 5, 255 - x * 2 - y * 2], axis=-1).astype(float)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def channel_spread(image: np.ndarray) -> float:
    means = image.reshape(-1, 3).mean(axis=0)
    return float(means.max() - means.min())


def local_contrast(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(float)
    return float(np.abs(np.diff(grey, axis=1)).mean() + np.abs(np.diff(grey, axis=0)).mean())


# --- colour ----------------------------------------------------------------------------------


def test_identity_params_return_the_frame_unchanged(frame: np.ndarray):
    assert np.array_equal(apply_color(frame, ColorParams()), frame)
    assert np.array_equal(adjust(frame), frame)
    assert np.array_equal(apply_enhance(frame, EnhanceParams()), frame)


def test_white_balance_removes_a_colour_cast(frame: np.ndarray):
    grey = np.repeat(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2).astype(float)
    cast = np.clip(grey * [1.0, 0.85, 0.65], 0, 255).astype(np.uint8)
    balanced = white_balance(cast)
    assert balanced.shape == cast.shape and balanced.dtype == np.uint8
    assert channel_spread(balanced) < 0.2 * channel_spread(cast)


def test_white_balance_ignores_clipped_pixels():
    image = np.full((40, 40, 3), (120, 100, 80), dtype=np.uint8)
    image[:20] = (255, 255, 120)  # a blown-out sky would otherwise skew the estimate
    balanced = white_balance(image)
    assert channel_spread(balanced[20:]) < 3


def test_saturation_zero_gives_grey(frame: np.ndarray):
    grey = adjust(frame, saturation=0.0)
    assert np.abs(grey[..., 0].astype(int) - grey[..., 1]).max() <= 1
    assert np.abs(grey[..., 1].astype(int) - grey[..., 2]).max() <= 1


def test_saturation_above_one_spreads_the_channels(frame: np.ndarray):
    def chroma(image: np.ndarray) -> float:
        return float(image.astype(float).std(axis=2).mean())

    assert chroma(adjust(frame, saturation=1.5)) > chroma(frame)


def test_exposure_plus_one_brightens(frame: np.ndarray):
    brighter = adjust(frame, exposure=1.0)
    assert brighter.mean() > frame.mean() + 20
    assert (brighter.astype(int) >= frame).all()


def test_contrast_zero_is_flat_mid_grey(frame: np.ndarray):
    flat = adjust(frame, contrast=0.0)
    assert set(np.unique(flat).tolist()) <= {127, 128}


def test_clahe_raises_local_contrast():
    rng = np.random.default_rng(3)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (64, 64)), (0, 0), 2)
    grey = (110 + 6 * texture / texture.std()).clip(0, 255).astype(np.uint8)
    low = np.repeat(grey[..., None], 3, axis=2)
    out = clahe(low)
    assert out.shape == low.shape and out.dtype == np.uint8
    assert local_contrast(out) > 1.5 * local_contrast(low)


@pytest.mark.parametrize("name", sorted(LOOKS))
def test_each_look_changes_the_frame(frame: np.ndarray, name: str):
    out = apply_look(frame, name)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frame).mean() > 2


def test_noir_is_monochrome(frame: np.ndarray):
    out = apply_look(frame, "noir")
    assert np.abs(out.astype(int) - out[..., :1]).max() <= 1


def test_warm_and_cool_shift_red_against_blue(frame: np.ndarray):
    def red_minus_blue(image: np.ndarray) -> float:
        return float(image[..., 0].mean() - image[..., 2].mean())

    assert red_minus_blue(apply_look(frame, "warm")) > red_minus_blue(frame) > red_minus_blue(apply_look(frame, "cool"))


def test_apply_color_runs_every_step(frame: np.ndarray):
    params = ColorParams(white_balance=True, exposure=0.5, contrast=1.2, saturation=0.8, clahe=True, look="vivid")
    out = apply_color(frame, params)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert not np.array_equal(out, frame)


def test_unknown_look_lists_the_choices(frame: np.ndarray):
    with pytest.raises(OpError, match="unknown look 'sepia'; choose one of: .*teal_orange"):
        apply_color(frame, ColorParams(look="sepia"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: adjust(f, exposure=4.0), "exposure must be between"),
        (lambda f: adjust(f, saturation=-1.0), "saturation must be between"),
        (lambda f: denoise(f, 2.0), "denoise must be between"),
        (lambda f: sharpen(f, float("nan")), "sharpen must be between"),
        (lambda f: clahe(f, tiles=0), "tiles must be between"),
        (lambda f: adjust(f.astype(np.float32)), "RGB uint8"),
        (lambda f: white_balance(f[..., :2]), "RGB uint8"),
    ],
)
def test_bad_parameters_raise_op_error(frame: np.ndarray, call, message: str):
    with pytest.raises(OpError, match=message):
        call(frame)


def test_inputs_are_not_modified(frame: np.ndarray):
    before = frame.copy()
    apply_color(frame, ColorParams(white_balance=True, exposure=1, saturation=2, clahe=True, look="film_warm"))
    apply_enhance(frame, EnhanceParams(denoise=1, sharpen=1, upscale=2))
    assert np.array_equal(frame, before)


# --- enhancement -----------------------------------------------------------------------------


def test_denoise_reduces_noise_on_a_flat_image():
    rng = np.random.default_rng(4)
    noisy = np.clip(128 + rng.normal(0, 12, (64, 64, 3)), 0, 255).astype(np.uint8)
    assert np.array_equal(denoise(noisy, 0.0), noisy)
    assert denoise(noisy, 0.5).astype(float).var() < 0.5 * noisy.astype(float).var()
    assert denoise(noisy, 1.0).astype(float).var() < denoise(noisy, 0.2).astype(float).var()


def test_sharpen_increases_the_edge_gradient():
    edge = np.zeros((32, 32, 3), dtype=np.uint8)
    edge[:, 16:] = 200
    soft = cv2.GaussianBlur(edge, (0, 0), 1.5)
    sharper = sharpen(soft, 1.0)
    assert np.abs(np.diff(sharper.astype(int), axis=1)).max() > np.abs(np.diff(soft.astype(int), axis=1)).max()
    assert np.array_equal(sharpen(soft, 0.0), soft)


def test_upscale_doubles_the_size(frame: np.ndarray):
    big = upscale2x(frame)
    assert big.shape == (frame.shape[0] * 2, frame.shape[1] * 2, 3) and big.dtype == np.uint8
    assert apply_enhance(frame, EnhanceParams(upscale=2, sharpen=0.3)).shape == big.shape
