"""Photo clips: real photos from scikit-image's wheel panned and zoomed into short H.264 MP4s."""

from __future__ import annotations

import ast
import importlib.util
import itertools
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

pytest.importorskip("skimage")

from devkit.photo_clips import PHOTOS, load_photo, make_photo_clip, make_photo_clips

SIZE = (160, 120)
SECONDS, FPS = 1.5, 10


def _decode(path) -> tuple[list[np.ndarray], str]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return frames, codec


def _match(frame: np.ndarray, photo: np.ndarray) -> float:
    """How well ``frame`` matches some crop of ``photo`` at some zoom (normalised cross-correlation, max 1)."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = photo.shape[:2]
    widest = min(w / SIZE[0], h / SIZE[1])  # the photo's widest crop of the frame's aspect ratio
    best = -1.0
    for zoom in np.linspace(1.0, 1.25, 11):  # the crop spans 1 to 1/1.25 of the widest one
        scale = zoom / widest
        scaled = cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        scaled = cv2.cvtColor(scaled, cv2.COLOR_RGB2GRAY).astype(np.float32)
        if scaled.shape[0] >= gray.shape[0] and scaled.shape[1] >= gray.shape[1]:
            best = max(best, float(cv2.matchTemplate(scaled, gray, cv2.TM_CCOEFF_NORMED).max()))
    return best


def test_clips_decode_at_size_and_length_and_pan_over_their_photo(tmp_path):
    paths = make_photo_clips(tmp_path, ["chelsea", "coffee"], seconds=SECONDS, fps=FPS, size=SIZE, seed=1)
    assert set(paths) == {"chelsea", "coffee"}
    for name, path in paths.items():
        assert path == tmp_path / f"{name}.mp4" and path.stat().st_size > 0
        frames, codec = _decode(path)
        assert codec == "h264"
        assert abs(len(frames) - SECONDS * FPS) <= 1
        assert all(f.shape == (SIZE[1], SIZE[0], 3) for f in frames)
        moves = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in itertools.pairwise(frames)]
        assert min(moves) > 0.5, f"{name}: some consecutive frames barely differ: {min(moves):.2f}"
        assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 5, "the pan goes somewhere"
        own, other = load_photo(name), load_photo("coffee" if name == "chelsea" else "chelsea")
        for frame in (frames[0], frames[-1]):
            assert _match(frame, own) > 0.9, f"{name}: a frame is not a crop of its photo"
            assert _match(frame, other) < 0.6


def test_a_clip_is_the_same_for_a_seed_and_differs_across_seeds(tmp_path):
    kw = {"seconds": 0.5, "fps": 8, "size": (64, 48)}
    a = make_photo_clip("rocket", tmp_path / "a.mp4", seed=3, **kw)
    b = make_photo_clip("rocket", tmp_path / "b.mp4", seed=3, **kw)
    c = make_photo_clip("rocket", tmp_path / "c.mp4", seed=4, **kw)
    fa, fb, fc = (_decode(p)[0] for p in (a, b, c))
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(fa, fc, strict=True))


def test_odd_sizes_and_unknown_photos_are_refused(tmp_path):
    with pytest.raises(ValueError, match="even"):
        make_photo_clip("chelsea", tmp_path / "x.mp4", size=(161, 120))
    with pytest.raises(KeyError):
        make_photo_clip("horse", tmp_path / "x.mp4")


def test_every_photo_loads_as_rgb_and_has_a_query_and_concepts():
    for name, photo in PHOTOS.items():
        image = load_photo(name)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        assert photo.query.strip() and photo.concepts, name


def imagenet_categories() -> set[str]:
    """torchvision's ImageNet class names (``MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]``), read from
    the list literal in ``torchvision/models/_meta.py`` when it is there: importing torchvision costs seconds."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        pytest.skip("torchvision is not installed")
    meta = Path(spec.submodule_search_locations[0]) / "models" / "_meta.py"
    if meta.is_file():
        for node in ast.parse(meta.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_IMAGENET_CATEGORIES" for t in node.targets):
                return set(ast.literal_eval(node.value))
    from torchvision.models import MobileNet_V2_Weights

    return set(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def test_every_concept_is_an_imagenet_category():
    categories = imagenet_categories()
    assert len(categories) == 1000 and {"tabby", "espresso", "moped"} <= categories
    unknown = {name: [c for c in photo.concepts if c not in categories] for name, photo in PHOTOS.items()}
    assert not {name: bad for name, bad in unknown.items() if bad}
