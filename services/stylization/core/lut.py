"""3D colour look-up tables: the Adobe/Resolve ``.cube`` format and a fast trilinear apply.

A :class:`Lut` holds ``table``, a float32 array of shape ``(size, size, size, 3)`` indexed
``table[b][g][r]`` (blue slowest, red fastest, the order of the data lines in a ``.cube`` file),
with output RGB values nominally in 0..1. An input value ``x`` (0..1) of a channel maps to the
lattice coordinate ``(x - domain_min) / (domain_max - domain_min) * (size - 1)``, clamped.

:func:`apply_lut` interpolates trilinearly: ``cv2.remap`` does the bilinear red/green part on
the blue slices laid out as one image, and ``cv2.blendLinear`` mixes the lookups in the two
blue slices around each pixel. Frames are processed in strips of rows.
OpenCV 4's ``cv2.remap`` keeps only 5 bits of each fractional coordinate, so coarse tables
are first refined (exactly, by an integer factor) to at least 33 points per axis; the error
then stays well under one output level with any OpenCV version.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

MIN_SIZE = 2
MAX_SIZE = 256
MAX_FILE_BYTES = 20 * 1024 * 1024
BUILTIN_LUT_DIR = Path(__file__).resolve().parents[1] / "luts"
"""The ``.cube`` files shipped with the service (written by ``luts/make_luts.py``)."""

_MIN_REFINED = 33  # lattice points per axis that keep remap's 5-bit fractions accurate
_MAX_REMAP = 32767  # cv2.remap addresses pixels with 16-bit integers
_STRIP_PIXELS = 32768  # apply in strips: small temporaries stay in cache and need no fresh pages
_KEYWORD = re.compile(r"^[A-Z][A-Z0-9_]*$")
_BARE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class LutError(ValueError):
    """A malformed ``.cube`` file, an unknown LUT or an unsafe LUT path."""


@dataclass(frozen=True, eq=False)
class Lut:
    """A 3D LUT; ``table`` is float32 ``(size, size, size, 3)`` indexed ``[b][g][r]``."""

    title: str
    size: int
    table: np.ndarray
    domain_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    domain_max: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise LutError(f"LUT size must be between {MIN_SIZE} and {MAX_SIZE}, got {self.size}")
        table = np.array(self.table, dtype=np.float32)  # a private, read-only copy
        if table.shape != (self.size,) * 3 + (3,):
            raise LutError(f"table shape {table.shape} does not match size {self.size}")
        if not np.isfinite(table).all():
            raise LutError("table has values that are not finite numbers")
        if any(hi <= lo for lo, hi in zip(self.domain_min, self.domain_max, strict=True)):
            raise LutError(f"DOMAIN_MIN {self.domain_min} must be below DOMAIN_MAX {self.domain_max}")
        table.flags.writeable = False
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "domain_min", tuple(float(v) for v in self.domain_min))
        object.__setattr__(self, "domain_max", tuple(float(v) for v in self.domain_max))


def lattice(size: int) -> np.ndarray:
    """The input colours of a ``size`` lattice, float32 ``(size, size, size, 3)`` as RGB, ``[b][g][r]``."""
    axis = np.linspace(0.0, 1.0, size, dtype=np.float32)
    b, g, r = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack([r, g, b], axis=-1)


def identity(size: int) -> Lut:
    """The LUT that maps every colour to itself."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise LutError(f"LUT size must be between {MIN_SIZE} and {MAX_SIZE}, got {size}")
    return Lut(title=f"identity {size}", size=size, table=lattice(size))


# --- parsing and writing ---------------------------------------------------------------------


def parse_cube(text: str) -> Lut:
    """Parse the text of a ``.cube`` file; raise :class:`LutError` naming the offending line."""
    if len(text) > MAX_FILE_BYTES:
        raise LutError(f"file too big: over {MAX_FILE_BYTES // (1024 * 1024)} MB")
    title, size, size_line = "", None, 0
    domain = {"DOMAIN_MIN": (0.0, 0.0, 0.0), "DOMAIN_MAX": (1.0, 1.0, 1.0)}
    tokens: list[str] = []
    data_lines: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("TITLE"):
            title = _parse_title(line, number)
            continue
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        key = parts[0]
        if _KEYWORD.match(key):
            if key.startswith("LUT_1D"):
                raise LutError(f"line {number}: 1D LUTs are not supported ({key})")
            if key == "LUT_3D_SIZE":
                if size is not None:
                    raise LutError(f"line {number}: LUT_3D_SIZE given twice (first on line {size_line})")
                size, size_line = _parse_size(parts, number), number
            elif key in domain:
                domain[key] = tuple(_parse_numbers(parts[1:], number, what=key))
            elif key == "LUT_3D_INPUT_RANGE":  # Resolve's one-range-for-all-channels form
                lo, hi = _parse_numbers(parts[1:], number, what=key, count=2)
                domain["DOMAIN_MIN"], domain["DOMAIN_MAX"] = (lo,) * 3, (hi,) * 3
            else:
                log.debug("line %d: ignoring keyword %s", number, key)
            continue
        if len(parts) != 3:
            raise LutError(f"line {number}: expected 3 numbers, got {len(parts)}")
        tokens.extend(parts)
        data_lines.append(number)
    if size is None:
        raise LutError("missing LUT_3D_SIZE")
    expected = size**3
    if len(data_lines) != expected:
        raise LutError(f"expected {expected} entries for LUT_3D_SIZE {size}, got {len(data_lines)}")
    table = _to_floats(tokens, data_lines).reshape(size, size, size, 3)
    return Lut(title, size, table, domain["DOMAIN_MIN"], domain["DOMAIN_MAX"])


def _parse_title(line: str, number: int) -> str:
    match = re.fullmatch(r'TITLE\s+"([^"]*)"\s*(#.*)?', line)
    if match is None:
        raise LutError(f'line {number}: expected TITLE "text"')
    return match.group(1)


def _parse_size(parts: list[str], number: int) -> int:
    if len(parts) != 2 or not parts[1].isdigit():
        raise LutError(f"line {number}: LUT_3D_SIZE needs one whole number, got {' '.join(parts[1:])!r}")
    size = int(parts[1])
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise LutError(f"line {number}: LUT_3D_SIZE must be between {MIN_SIZE} and {MAX_SIZE}, got {size}")
    return size


def _parse_numbers(parts: list[str], number: int, what: str, count: int = 3) -> list[float]:
    if len(parts) != count:
        raise LutError(f"line {number}: {what} expects {count} numbers, got {len(parts)}")
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise LutError(f"line {number}: {part!r} is not a number") from None
        if not math.isfinite(value):
            raise LutError(f"line {number}: {part!r} is not a finite number")
        values.append(value)
    return values


def _to_floats(tokens: list[str], data_lines: list[int]) -> np.ndarray:
    """The data tokens as float32 ``(n, 3)``; on a bad token, find its line for the message."""
    try:
        values = np.array(tokens, dtype=np.float64).reshape(-1, 3)
        bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    except ValueError:
        for index, number in enumerate(data_lines):
            _parse_numbers(tokens[3 * index : 3 * index + 3], number, what="entry")
        raise LutError("the data has values that are not numbers") from None
    if bad.size:
        index = int(bad[0])
        _parse_numbers(tokens[3 * index : 3 * index + 3], data_lines[index], what="entry")
    return values.astype(np.float32)


def dump_cube(lut: Lut, comments: Sequence[str] = ()) -> str:
    """The ``.cube`` text of ``lut``, with optional ``#`` comment lines at the top."""
    out = io.StringIO()
    for comment in comments:
        out.write(f"# {comment}\n")
    out.write(f'TITLE "{lut.title.replace(chr(34), chr(39))}"\n')
    out.write(f"LUT_3D_SIZE {lut.size}\n")
    if lut.domain_min != (0.0, 0.0, 0.0) or lut.domain_max != (1.0, 1.0, 1.0):
        out.write("DOMAIN_MIN {:.6f} {:.6f} {:.6f}\n".format(*lut.domain_min))
        out.write("DOMAIN_MAX {:.6f} {:.6f} {:.6f}\n".format(*lut.domain_max))
    data = lut.table.reshape(-1, 3).astype(np.float64) + 0.0  # + 0.0 turns -0.0 into 0.0
    np.savetxt(out, data, fmt="%.6f")
    return out.getvalue()


def write_cube(lut: Lut, path: Path | str, comments: Sequence[str] = ()) -> None:
    """Write ``lut`` as a ``.cube`` file (LF line endings, six decimals)."""
    Path(path).write_text(dump_cube(lut, comments), encoding="utf-8", newline="\n")


# --- loading by name -------------------------------------------------------------------------


def load_lut(name_or_path: str, lut_dir: Path) -> Lut:
    """Load a LUT by bare name (``<lut_dir>/<name>.cube``) or by a path inside ``lut_dir``.

    Paths that leave ``lut_dir`` (``..``, absolute paths elsewhere, symlinks pointing out)
    raise :class:`LutError` ("unsafe LUT path"). Parsed files are cached by path and mtime.
    """
    path = _resolve(name_or_path, lut_dir)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise LutError(f"unknown LUT {name_or_path!r}; available: {', '.join(list_luts(lut_dir)) or 'none'}") from None
    if not path.is_file():
        raise LutError(f"LUT {name_or_path!r} is not a file")
    if stat.st_size > MAX_FILE_BYTES:
        raise LutError(f"{path.name}: file too big ({stat.st_size} bytes, limit {MAX_FILE_BYTES})")
    return _load_file(str(path), stat.st_mtime_ns, stat.st_size)


def _resolve(name_or_path: str, lut_dir: Path) -> Path:
    root = Path(lut_dir).resolve()
    if _BARE_NAME.match(name_or_path) and "/" not in name_or_path and ".." not in name_or_path:
        candidate = root / (name_or_path if name_or_path.endswith(".cube") else f"{name_or_path}.cube")
    else:
        given = Path(name_or_path)
        if not name_or_path or ".." in given.parts or "\\" in name_or_path or "\0" in name_or_path:
            raise LutError(f"unsafe LUT path {name_or_path!r}")
        candidate = given if given.is_absolute() else root / given
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise LutError(f"unsafe LUT path {name_or_path!r}: it leaves the LUT folder")
    if resolved.suffix != ".cube":
        raise LutError(f"LUT {name_or_path!r} must be a .cube file")
    return resolved


@functools.lru_cache(maxsize=32)
def _load_file(path: str, mtime_ns: int, size: int) -> Lut:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LutError(f"{Path(path).name}: not UTF-8 text ({exc.reason})") from None
    try:
        return parse_cube(text)
    except LutError as exc:
        raise LutError(f"{Path(path).name}: {exc}") from None


def list_luts(lut_dir: Path) -> list[str]:
    """The names (file stems) of the ``.cube`` files in ``lut_dir`` that stay inside it, sorted."""
    root = Path(lut_dir).resolve()
    if not root.is_dir():
        return []
    return sorted(
        path.stem
        for path in root.glob("*.cube")
        if path.resolve().is_relative_to(root) and path.is_file()
    )


# --- applying --------------------------------------------------------------------------------


def apply_lut(frame: np.ndarray, lut: Lut) -> np.ndarray:
    """Map an RGB uint8 ``(H, W, 3)`` frame through ``lut`` with trilinear interpolation."""
    if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3):
        raise ValueError(f"expected an RGB uint8 frame of shape (H, W, 3), got {_describe(frame)}")
    plan = _plan(lut)
    frame = np.ascontiguousarray(frame)
    out = np.empty_like(frame)
    rows = max(1, _STRIP_PIXELS // max(1, frame.shape[1]))
    for top in range(0, frame.shape[0], rows):
        out[top : top + rows] = _apply_strip(frame[top : top + rows], plan)
    return out


def _apply_strip(frame: np.ndarray, plan: _Plan) -> np.ndarray:
    red, green, blue = cv2.split(frame)
    x = cv2.LUT(red, plan.pos_r)
    y = cv2.LUT(green, plan.pos_g)
    y0 = cv2.add(y, cv2.LUT(blue, plan.y_off0))
    y1 = cv2.add(y, cv2.LUT(blue, plan.y_off1))
    x0 = x1 = x
    if plan.grid_cols > 1:
        x0 = cv2.add(x, cv2.LUT(blue, plan.x_off0))
        x1 = cv2.add(x, cv2.LUT(blue, plan.x_off1))
    lower = cv2.remap(plan.image, x0, y0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    upper = cv2.remap(plan.image, x1, y1, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    blended = cv2.blendLinear(lower, upper, cv2.LUT(blue, plan.weight_lower), cv2.LUT(blue, plan.weight_upper))
    # convertScaleAbs rounds and saturates (the image is already >= 0); then drop the padding
    return cv2.cvtColor(cv2.convertScaleAbs(blended), cv2.COLOR_RGBA2RGB)


def _describe(frame: object) -> str:
    if isinstance(frame, np.ndarray):
        return f"{frame.dtype} array of shape {frame.shape}"
    return type(frame).__name__


@dataclass(frozen=True)
class _Plan:
    """What :func:`apply_lut` precomputes for one LUT: the slice image and per-value tables."""

    image: np.ndarray  # float32 RGBA, 0..255: the blue slices (rows g, columns r) in a grid
    # (the unused fourth channel makes cv2.remap about twice as fast)
    grid_cols: int
    pos_r: np.ndarray  # float32 (256,): red value -> column within a slice
    pos_g: np.ndarray  # float32 (256,): green value -> row within a slice
    y_off0: np.ndarray  # float32 (256,): blue value -> row offset of the lower slice
    y_off1: np.ndarray
    x_off0: np.ndarray  # float32 (256,): blue value -> column offset of the lower slice
    x_off1: np.ndarray
    weight_lower: np.ndarray  # float32 (256,): blue value -> weight of the lower slice
    weight_upper: np.ndarray


@functools.lru_cache(maxsize=32)
def _plan(lut: Lut) -> _Plan:
    table = _refine(lut.table.astype(np.float32), max(1, math.ceil((_MIN_REFINED - 1) / (lut.size - 1))))
    n = table.shape[0]
    cols = 1
    while math.ceil(n / cols) * n > _MAX_REMAP:
        cols += 1
    rows = math.ceil(n / cols)
    image = np.zeros((rows * n, cols * n, 4), dtype=np.float32)
    for b in range(n):
        top, left = (b // cols) * n, (b % cols) * n
        image[top : top + n, left : left + n, :3] = table[b]
    np.clip(image * 255.0, 0.0, 255.0, out=image)

    values = np.arange(256, dtype=np.float64) / 255.0
    lo, hi = np.array(lut.domain_min), np.array(lut.domain_max)
    pos = np.clip((values[:, None] - lo) / (hi - lo), 0.0, 1.0) * (n - 1)  # (256, 3)
    b0 = np.minimum(np.floor(pos[:, 2]), n - 2).astype(np.int64)
    b1 = b0 + 1

    def f32(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.float32)

    return _Plan(
        image=image,
        grid_cols=cols,
        pos_r=f32(pos[:, 0]),
        pos_g=f32(pos[:, 1]),
        y_off0=f32((b0 // cols) * n),
        y_off1=f32((b1 // cols) * n),
        x_off0=f32((b0 % cols) * n),
        x_off1=f32((b1 % cols) * n),
        weight_lower=f32(1.0 - (pos[:, 2] - b0)),
        weight_upper=f32(pos[:, 2] - b0),
    )


def _refine(table: np.ndarray, factor: int) -> np.ndarray:
    """Resample by an integer factor per axis with linear interpolation (exact for trilinear)."""
    if factor == 1:
        return table
    for axis in range(3):
        n = table.shape[axis]
        steps = np.arange((n - 1) * factor + 1)
        index = np.minimum(steps // factor, n - 2)
        frac = ((steps - index * factor) / factor).astype(np.float32)
        shape = [1, 1, 1, 1]
        shape[axis] = -1
        frac = frac.reshape(shape)
        table = table.take(index, axis=axis) * (1 - frac) + table.take(index + 1, axis=axis) * frac
    return table
