"""A request's operations are checked before any decoding and run in the order given."""

from __future__ import annotations

import numpy as np
import pytest

from services.stylization.core.color import apply_color
from services.stylization.core.lut import BUILTIN_LUT_DIR, apply_lut, load_lut
from services.stylization.core.ops import RequestError, plan
from services.stylization.core.style_models import load_styles
from shared.events import ColorOp, ColorParams, EnhanceOp, EnhanceParams, LutOp, StyleOp
from shared.settings import ModelSettings


@pytest.fixture(scope="module")
def styles():
    return load_styles(ModelSettings())


def frames(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (36, 64, 3), dtype=np.uint8) for _ in range(n)]


def test_operations_run_in_order(styles):
    ops = [LutOp(lut="teal_orange"), ColorOp(color=ColorParams(saturation=0.0))]
    out = plan(ops, styles, BUILTIN_LUT_DIR).transform()(frames())
    lut = load_lut("teal_orange", BUILTIN_LUT_DIR)
    expected = [apply_color(apply_lut(f, lut), ColorParams(saturation=0.0)) for f in frames()]
    assert all(np.array_equal(a, b) for a, b in zip(out, expected))


def test_strength_zero_keeps_the_input_and_one_applies_the_style(styles):
    name = sorted(styles)[0]
    zero = plan([StyleOp(style=name, strength=0.0)], styles, BUILTIN_LUT_DIR, flicker=0.0).transform()(frames())
    full = plan([StyleOp(style=name, strength=1.0)], styles, BUILTIN_LUT_DIR, flicker=0.0).transform()(frames())
    assert all(np.array_equal(a, b) for a, b in zip(zero, frames()))
    assert np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(full, frames())]) > 5


def test_upscale_is_reported_in_the_plan(styles):
    p = plan([EnhanceOp(enhance=EnhanceParams(upscale=2))], styles, BUILTIN_LUT_DIR)
    assert p.scale == 2 and p.transform()(frames(1))[0].shape == (72, 128, 3)


@pytest.mark.parametrize("op,reason,mentions", [
    (StyleOp(style="no-such-style"), "unknown_style", "available"),
    (LutOp(lut="missing"), "bad_lut", "missing"),
    (LutOp(lut="../../etc/passwd"), "bad_lut", "unsafe"),
    (ColorOp(color=ColorParams(look="no-such-look")), "unknown_look", "warm"),
])
def test_bad_operations_fail_before_any_frame_with_a_reason(styles, op, reason, mentions):
    with pytest.raises(RequestError) as err:
        plan([op], styles, BUILTIN_LUT_DIR)
    assert err.value.reason == reason and mentions in str(err.value)


def test_malformed_lut_file_is_a_bad_lut(tmp_path, styles):
    (tmp_path / "broken.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n1 1\n")
    with pytest.raises(RequestError, match="line 3"):
        plan([LutOp(lut="broken")], styles, tmp_path)
