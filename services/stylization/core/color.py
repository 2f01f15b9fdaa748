"""Colour and enhancement operations on RGB uint8 frames of shape ``(H, W, 3)``.

Every function is pure: it never modifies its input, and where the parameters ask for no
change it returns the input array itself (so an identity request costs nothing).

Tone work happens on 256-entry tables (``cv2.LUT``) and colour mixing with ``cv2.transform``,
so each operation is one or two passes over the frame. Exposure is applied in linear light
(a 2.2 gamma approximates the sRGB/Rec.709 transfer), contrast pivots on display mid-grey
(0.5) and saturation mixes each pixel with its Rec.709 luma.

A *look* (:data:`LOOKS`) is a recipe over the same building blocks plus an optional grading
function; it is rendered once into a 3D LUT and applied with :func:`lut.apply_lut`.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable

import cv2
import numpy as np

from services.stylization.core.lut import Lut, apply_lut, lattice
from shared.events import ColorParams, EnhanceParams

GAMMA = 2.2
LUMA = np.array([0.2126, 0.7152, 0.0722])
"""Rec.709 luma weights for R, G, B."""
LOOK_LUT_SIZE = 33

_LEVELS = np.arange(256) / 255.0
_CLIPPED = 250  # white balance ignores pixels with a channel at or above this level ...
_DARK = 10  # ... and pixels with every channel at or below this one


class OpError(ValueError):
    """Bad parameters for an operation, or an unknown name."""


def _check_frame(frame: object) -> None:
    if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3):
        got = f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise OpError(f"expected an RGB uint8 frame of shape (H, W, 3), got {got}")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise OpError(f"{name} must be between {low} and {high}, got {value}")


def _to_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# --- float building blocks (values 0..1, shared by the frame functions and the looks) -------


def to_linear(x: np.ndarray) -> np.ndarray:
    return np.power(np.clip(x, 0.0, 1.0), GAMMA)


def from_linear(x: np.ndarray) -> np.ndarray:
    return np.power(np.clip(x, 0.0, 1.0), 1.0 / GAMMA)


def tone_curve(x: np.ndarray, exposure: float = 0.0, contrast: float = 1.0) -> np.ndarray:
    """Exposure in stops (linear light, clipping at white), then contrast around mid-grey."""
    y = from_linear(to_linear(x) * 2.0**exposure) if exposure else x
    return 0.5 + (y - 0.5) * contrast if contrast != 1.0 else y


def saturation_matrix(saturation: float) -> np.ndarray:
    """3x3 matrix mixing RGB with its luma: 0 gives grey, 1 leaves colours alone."""
    return (saturation * np.eye(3) + (1.0 - saturation) * np.outer(np.ones(3), LUMA)).astype(np.float32)


# --- colour operations -----------------------------------------------------------------------


def white_balance(frame: np.ndarray) -> np.ndarray:
    """Gray-world white balance: scale each channel (in linear light) so the means agree.

    Near-clipped and near-black pixels are left out of the estimate, and the gains are
    clamped to 0.5..2 so a frame dominated by one colour is not wrecked.
    """
    _check_frame(frame)
    sample = frame[::4, ::4].reshape(-1, 3)
    peak = sample.max(axis=1)
    keep = (peak < _CLIPPED) & (peak > _DARK)
    if np.count_nonzero(keep) >= 16:
        sample = sample[keep]
    means = np.maximum(to_linear(_LEVELS)[sample].mean(axis=0), 1e-6)
    gains = np.clip(means.mean() / means, 0.5, 2.0)
    table = _to_u8(from_linear(to_linear(_LEVELS)[:, None] * gains) * 255.0)
    return cv2.LUT(frame, table.reshape(256, 1, 3))


def adjust(frame: np.ndarray, exposure: float = 0.0, contrast: float = 1.0, saturation: float = 1.0) -> np.ndarray:
    """Exposure (stops, -3..3), contrast (0..3) and saturation (0..3); 0/1/1 changes nothing."""
    _check_frame(frame)
    _check_range("exposure", exposure, -3.0, 3.0)
    _check_range("contrast", contrast, 0.0, 3.0)
    _check_range("saturation", saturation, 0.0, 3.0)
    if exposure == 0.0 and contrast == 1.0 and saturation == 1.0:
        return frame
    curve = tone_curve(_LEVELS, exposure, contrast) * 255.0
    if saturation == 1.0:
        return cv2.LUT(frame, _to_u8(curve))
    mixed = cv2.transform(cv2.LUT(frame, curve.astype(np.float32)), saturation_matrix(saturation))
    np.maximum(mixed, 0.0, out=mixed)
    return cv2.convertScaleAbs(mixed)  # rounds and saturates at 255


_clahe_cache = threading.local()  # CLAHE objects keep state while applying: one set per thread


def _clahe_object(clip_limit: float, tiles: int) -> cv2.CLAHE:
    cache: dict[tuple[float, int], cv2.CLAHE] = _clahe_cache.__dict__.setdefault("objects", {})
    key = (clip_limit, tiles)
    if key not in cache:
        if len(cache) >= 8:
            cache.clear()
        cache[key] = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles))
    return cache[key]


def clahe(frame: np.ndarray, clip_limit: float = 2.0, tiles: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of the L channel of LAB."""
    _check_frame(frame)
    _check_range("clip_limit", clip_limit, 0.1, 40.0)
    _check_range("tiles", tiles, 1, 64)
    lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB)
    lightness, a, b = cv2.split(lab)
    lightness = _clahe_object(float(clip_limit), int(tiles)).apply(lightness)
    return cv2.cvtColor(cv2.merge([lightness, a, b]), cv2.COLOR_LAB2RGB)


# --- looks -----------------------------------------------------------------------------------

_TEAL = np.array([-0.05, 0.02, 0.06])
_ORANGE = np.array([0.07, 0.01, -0.06])


def grade_teal_orange(rgb: np.ndarray) -> np.ndarray:
    """Split toning: shadows towards teal, highlights towards orange."""
    y = (rgb @ LUMA)[..., None]
    return rgb + (1.0 - y) ** 2 * _TEAL + y**2 * _ORANGE


def grade_film(rgb: np.ndarray) -> np.ndarray:
    """A gentle S-curve with lifted blacks and rolled-off whites."""
    x = np.clip(rgb, 0.0, 1.0)
    s_curve = x - 0.6 * np.sin(2.0 * math.pi * x) / (2.0 * math.pi)
    return 0.03 + 0.94 * s_curve


LOOKS: dict[str, dict] = {
    "warm": {"gains": (1.12, 1.0, 0.85), "saturation": 1.05},
    "cool": {"gains": (0.88, 1.0, 1.12)},
    "vivid": {"contrast": 1.2, "saturation": 1.4},
    "muted": {"contrast": 0.85, "saturation": 0.6},
    "noir": {"contrast": 1.35, "saturation": 0.0},
    "teal_orange": {"contrast": 1.1, "saturation": 1.1, "grade": grade_teal_orange},
    "film_warm": {"gains": (1.06, 1.0, 0.9), "saturation": 0.9, "grade": grade_film},
}
"""Named looks. Keys, applied in this order: ``gains`` (linear R, G, B multipliers),
``exposure``/``contrast``/``saturation`` (as in :func:`adjust`) and ``grade`` (a function
on float RGB arrays in 0..1)."""


def render_look(name: str, rgb: np.ndarray) -> np.ndarray:
    """The look ``name`` applied to float RGB values in 0..1 (any shape ending in 3), clipped."""
    spec = _look_spec(name)
    out = np.asarray(rgb, dtype=np.float64)
    if "gains" in spec:
        out = from_linear(to_linear(out) * np.asarray(spec["gains"]))
    out = tone_curve(out, spec.get("exposure", 0.0), spec.get("contrast", 1.0))
    out = out @ saturation_matrix(spec.get("saturation", 1.0)).T.astype(np.float64)
    grade: Callable[[np.ndarray], np.ndarray] | None = spec.get("grade")
    if grade is not None:
        out = grade(out)
    return np.clip(out, 0.0, 1.0)


@functools.lru_cache(maxsize=32)
def look_lut(name: str, size: int = LOOK_LUT_SIZE) -> Lut:
    """The look ``name`` rendered into a 3D LUT."""
    return Lut(title=name, size=size, table=render_look(name, lattice(size)).astype(np.float32))


def apply_look(frame: np.ndarray, name: str) -> np.ndarray:
    """Apply the named look (see :data:`LOOKS`)."""
    _check_frame(frame)
    return apply_lut(frame, look_lut(name))


def _look_spec(name: str) -> dict:
    try:
        return LOOKS[name]
    except KeyError:
        raise OpError(f"unknown look {name!r}; choose one of: {', '.join(sorted(LOOKS))}") from None


def apply_color(frame: np.ndarray, params: ColorParams) -> np.ndarray:
    """White balance, then exposure/contrast/saturation, then CLAHE, then the look.

    ``ColorParams()`` returns ``frame`` itself.
    """
    _check_frame(frame)
    if params.look:
        _look_spec(params.look)  # fail before doing any work
    out = white_balance(frame) if params.white_balance else frame
    out = adjust(out, params.exposure, params.contrast, params.saturation)
    if params.clahe:
        out = clahe(out)
    if params.look:
        out = apply_look(out, params.look)
    return out


# --- enhancement -----------------------------------------------------------------------------


def denoise(frame: np.ndarray, amount: float) -> np.ndarray:
    """Edge-preserving smoothing (5x5 bilateral filter); ``amount`` 0..1, 0 changes nothing.

    Non-local means (``cv2.fastNlMeansDenoisingColored``) cleans more but costs ~25 ms at
    640x360 and ~125 ms at 1280x720 even with 3/7 windows, too slow for video; the bilateral
    filter costs a few milliseconds.
    """
    _check_frame(frame)
    _check_range("denoise", amount, 0.0, 1.0)
    if amount == 0.0:
        return frame
    return cv2.bilateralFilter(frame, d=5, sigmaColor=5.0 + 70.0 * amount, sigmaSpace=2.0)


def sharpen(frame: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp mask (Gaussian sigma 1, gain up to 1.5); ``amount`` 0..1, 0 changes nothing."""
    _check_frame(frame)
    _check_range("sharpen", amount, 0.0, 1.0)
    if amount == 0.0:
        return frame
    gain = 1.5 * amount
    blurred = cv2.GaussianBlur(frame, (0, 0), 1.0)
    return cv2.addWeighted(frame, 1.0 + gain, blurred, -gain, 0.0)


def upscale2x(frame: np.ndarray) -> np.ndarray:
    """Double width and height with bicubic interpolation."""
    _check_frame(frame)
    height, width = frame.shape[:2]
    return cv2.resize(frame, (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC)


def apply_enhance(frame: np.ndarray, params: EnhanceParams) -> np.ndarray:
    """Denoise, then upscale, then sharpen (sharpening last also crisps the interpolation).

    ``EnhanceParams()`` returns ``frame`` itself.
    """
    _check_frame(frame)
    out = denoise(frame, params.denoise)
    if params.upscale == 2:
        out = upscale2x(out)
    return sharpen(out, params.sharpen)
