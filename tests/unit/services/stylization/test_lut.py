from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from devkit.make_luts import BUILTIN_LOOKS, make_luts
from services.stylization.core import lut as lut_module
from services.stylization.core.lut import (
    BUILTIN_LUT_DIR,
    Lut,
    LutError,
    apply_lut,
    dump_cube,
    identity,
    lattice,
    list_luts,
    load_lut,
    parse_cube,
    write_cube,
)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def cube_text(size: int, rows: list[str] | None = None, header: str = "") -> str:
    if rows is None:
        rows = [f"{r:.4f} {g:.4f} {b:.4f}" for r, g, b in lattice(size).reshape(-1, 3)]
    return header + f"LUT_3D_SIZE {size}\n" + "\n".join(rows) + "\n"


def reference_trilinear(frame: np.ndarray, lut: Lut) -> np.ndarray:
    """Straightforward float64 trilinear interpolation, for checking the fast path."""
    n = lut.size
    pos = frame / 255.0 * (n - 1)
    low = np.minimum(np.floor(pos).astype(int), n - 2)
    frac = pos - low
    out = np.zeros(frame.shape, dtype=np.float64)
    for db in (0, 1):
        for dg in (0, 1):
            for dr in (0, 1):
                weight = np.ones(frame.shape[:2])
                for channel, step in ((0, dr), (1, dg), (2, db)):
                    weight = weight * (frac[..., channel] if step else 1 - frac[..., channel])
                corner = lut.table[low[..., 2] + db, low[..., 1] + dg, low[..., 0] + dr]
                out += weight[..., None] * corner
    return np.clip(out * 255.0, 0, 255)


# --- parsing and writing ---------------------------------------------------------------------


def test_parse_reads_title_domain_and_red_fastest_order():
    text = (
        "# a comment\n"
        'TITLE "tiny"\n'
        "DOMAIN_MIN 0 0 0\n"
        "DOMAIN_MAX 1 1 1\n"
        "LUT_3D_SIZE 2\n"
        "0 0 0\n1 0 0\n0 1 0\n1 1 0\n"
        "0 0 1  # trailing comment\n1 0 1\n0 1 1\n1 1 1\n"
    )
    lut = parse_cube(text)
    assert (lut.title, lut.size, lut.table.dtype) == ("tiny", 2, np.float32)
    assert lut.table[0, 0, 1].tolist() == [1, 0, 0]  # [b][g][r]
    assert lut.table[1, 0, 0].tolist() == [0, 0, 1]
    assert lut.domain_min == (0.0, 0.0, 0.0) and lut.domain_max == (1.0, 1.0, 1.0)


def test_write_then_parse_round_trips(tmp_path: Path):
    table = np.random.default_rng(1).random((5, 5, 5, 3)).astype(np.float32)
    lut = Lut("random", 5, table, domain_min=(0.0, 0.1, 0.0), domain_max=(1.0, 0.9, 2.0))
    write_cube(lut, tmp_path / "random.cube", comments=["made in a test"])
    back = parse_cube((tmp_path / "random.cube").read_text())
    assert back.title == "random" and back.size == 5
    assert back.domain_min == pytest.approx(lut.domain_min) and back.domain_max == pytest.approx(lut.domain_max)
    np.testing.assert_allclose(back.table, lut.table, atol=1e-6)


def test_lut_table_is_read_only():
    with pytest.raises(ValueError):
        identity(3).table[0, 0, 0, 0] = 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 0 0\n" * 8, "missing LUT_3D_SIZE"),
        (cube_text(2, ["0 0 0"] * 7), "expected 8 entries for LUT_3D_SIZE 2, got 7"),
        (cube_text(2) + "1 1 1\n", "expected 8 entries for LUT_3D_SIZE 2, got 9"),
        (cube_text(2, ["0 0 0"] * 3 + ["0 0"] + ["0 0 0"] * 4), "line 5: expected 3 numbers, got 2"),
        (cube_text(2, ["0 0 0"] * 5 + ["0 abc 0"] + ["0 0 0"] * 2), "line 7: 'abc' is not a number"),
        (cube_text(2, ["0 0 0"] * 6 + ["0 nan 0", "0 0 0"]), "line 8: 'nan' is not a finite number"),
        ("LUT_3D_SIZE 1\n0 0 0\n", "line 1: LUT_3D_SIZE must be between 2 and 256, got 1"),
        ("LUT_3D_SIZE 300\n", "line 1: LUT_3D_SIZE must be between 2 and 256, got 300"),
        ("LUT_3D_SIZE two\n", "line 1: LUT_3D_SIZE needs one whole number"),
        ("LUT_3D_SIZE 2\nLUT_3D_SIZE 2\n", "line 2: LUT_3D_SIZE given twice"),
        ("# 1D\nLUT_1D_SIZE 4\n0 0 0\n", "line 2: 1D LUTs are not supported"),
        ("DOMAIN_MIN 0 0\n" + cube_text(2), "line 1: DOMAIN_MIN expects 3 numbers, got 2"),
        ("DOMAIN_MIN 1 1 1\nDOMAIN_MAX 0 0 0\n" + cube_text(2), "must be below DOMAIN_MAX"),
        ("TITLE no quotes\n" + cube_text(2), 'line 1: expected TITLE "text"'),
    ],
)
def test_malformed_cube_raises_a_useful_error(text: str, message: str):
    with pytest.raises(LutError, match=re.escape(message)):
        parse_cube(text)


def test_huge_text_is_refused():
    with pytest.raises(LutError, match="file too big"):
        parse_cube("#" * (20 * 1024 * 1024 + 1))


def test_unknown_keywords_are_ignored():
    lut = parse_cube(cube_text(2, header="LUT_IN_VIDEO_RANGE\n"))
    assert lut.size == 2


# --- applying --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 17, 33])
def test_identity_lut_returns_the_input(frame: np.ndarray, size: int):
    out = apply_lut(frame, identity(size))
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frame).max() <= 1


def test_channel_swap_lut_swaps_channels(frame: np.ndarray):
    grid = lattice(9)
    swap = Lut("swap", 9, grid[..., ::-1])  # RGB -> BGR
    out = apply_lut(frame, swap)
    assert np.abs(out.astype(int) - frame[..., ::-1]).max() <= 1


def test_trilinear_matches_an_analytic_square_curve(frame: np.ndarray):
    square = Lut("square", 33, lattice(33) ** 2)
    expected = (frame / 255.0) ** 2 * 255.0
    assert np.abs(apply_lut(frame, square) - expected).max() <= 1.0


@pytest.mark.parametrize("size", [3, 17])
def test_fast_path_matches_plain_trilinear_interpolation(frame: np.ndarray, size: int):
    lut = Lut("random", size, np.random.default_rng(size).random((size,) * 3 + (3,)).astype(np.float32))
    assert np.abs(apply_lut(frame, lut) - reference_trilinear(frame, lut)).max() <= 1.0


def test_slices_laid_out_in_a_grid_give_the_same_result(frame: np.ndarray, monkeypatch: pytest.MonkeyPatch):
    lut = Lut("random", 17, np.random.default_rng(5).random((17, 17, 17, 3)).astype(np.float32))
    monkeypatch.setattr(lut_module, "_MAX_REMAP", 100)  # what a very large LUT needs for cv2.remap
    assert np.abs(apply_lut(frame, lut) - reference_trilinear(frame, lut)).max() <= 1.0


def test_domain_rescales_the_input():
    lut = Lut("half", 5, lattice(5), domain_max=(0.5, 0.5, 0.5))  # 0..0.5 stretched to 0..1
    frame = np.full((2, 2, 3), 64, dtype=np.uint8)
    assert np.abs(apply_lut(frame, lut).astype(int) - 128).max() <= 1


def test_apply_rejects_a_non_rgb_frame():
    with pytest.raises(ValueError, match="RGB uint8"):
        apply_lut(np.zeros((4, 4), dtype=np.uint8), identity(2))


# --- loading by name -------------------------------------------------------------------------


@pytest.fixture
def lut_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "luts"
    folder.mkdir()
    write_cube(identity(2), folder / "plain.cube")
    (folder / "sub").mkdir()
    write_cube(identity(3), folder / "sub" / "nested.cube")
    return folder


def test_load_by_bare_name_and_by_inner_path(lut_dir: Path):
    assert load_lut("plain", lut_dir).size == 2
    assert load_lut("plain.cube", lut_dir).size == 2
    assert load_lut("sub/nested.cube", lut_dir).size == 3
    assert load_lut(str(lut_dir / "plain.cube"), lut_dir).size == 2


def test_unknown_name_lists_what_exists(lut_dir: Path):
    with pytest.raises(LutError, match="unknown LUT 'nope'; available: plain"):
        load_lut("nope", lut_dir)


@pytest.mark.parametrize("name", ["../outside", "../outside.cube", "sub/../../outside.cube", "/etc/passwd"])
def test_unsafe_paths_are_rejected(lut_dir: Path, name: str):
    write_cube(identity(2), lut_dir.parent / "outside.cube")
    with pytest.raises(LutError, match="unsafe LUT path"):
        load_lut(name, lut_dir)


def test_symlink_escaping_the_folder_is_rejected(lut_dir: Path):
    write_cube(identity(2), lut_dir.parent / "outside.cube")
    os.symlink(lut_dir.parent / "outside.cube", lut_dir / "sneaky.cube")
    with pytest.raises(LutError, match="unsafe LUT path"):
        load_lut("sneaky", lut_dir)
    assert "sneaky" not in list_luts(lut_dir)


def test_bad_file_error_names_file_and_line(lut_dir: Path):
    (lut_dir / "broken.cube").write_text("LUT_3D_SIZE 2\n0 0\n")
    with pytest.raises(LutError, match="broken.cube: line 2: expected 3 numbers, got 2"):
        load_lut("broken", lut_dir)


def test_list_luts(lut_dir: Path, tmp_path: Path):
    assert list_luts(lut_dir) == ["plain"]
    assert list_luts(tmp_path / "missing") == []


# --- built-in LUTs ---------------------------------------------------------------------------


def test_builtin_luts_parse_and_are_listed():
    names = list_luts(BUILTIN_LUT_DIR)
    assert set(BUILTIN_LOOKS) <= set(names)
    for name in names:
        lut = load_lut(name, BUILTIN_LUT_DIR)
        assert lut.size >= 2 and not np.allclose(lut.table, identity(lut.size).table, atol=1e-3)
        assert (BUILTIN_LUT_DIR / f"{name}.cube").stat().st_size < 1024 * 1024


def test_make_luts_regenerates_identical_files(tmp_path: Path):
    paths = make_luts(tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{name}.cube" for name in BUILTIN_LOOKS)
    for path in paths:
        committed = BUILTIN_LUT_DIR / path.name
        assert path.read_bytes() == committed.read_bytes()
        assert "make_luts" in path.read_text().splitlines()[0]


def test_dump_cube_writes_comments_first():
    text = dump_cube(identity(2), comments=["hello"])
    assert text.splitlines()[:3] == ["# hello", 'TITLE "identity 2"', "LUT_3D_SIZE 2"]
