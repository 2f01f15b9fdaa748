"""Short real-content test videos made from the photographs scikit-image ships in its wheel.

Each clip is a slow pan and zoom (the "Ken Burns" effect) over one photo from ``skimage.data``,
so consecutive frames differ while the content stays the same: a cat stays a cat from the first
frame to the last. Nothing is downloaded; the photos are files inside the scikit-image wheel.

Every entry of ``PHOTOS`` carries a plain-words ``query`` a user would type to find the clip and
the ImageNet class names (torchvision's ``MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]``
spelling) an ImageNet classifier would plausibly rank in its top 5 for the photo.

Clips are H.264 MP4 (yuv420p) written with PyAV; the crop and resize are done with OpenCV. The
path of the pan and zoom is drawn from ``seed``, so a clip is the same for the same arguments.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


@dataclass(frozen=True)
class PhotoClip:
    """One photo: its ``skimage.data`` loader, a search query for it and the ImageNet classes it shows."""

    loader: str
    query: str
    concepts: tuple[str, ...]


# ImageNet has no astronaut, rocket or galaxy class: those concepts are the classes MobileNetV2 does rank
# in its top 5 for frames of these clips.
PHOTOS: dict[str, PhotoClip] = {
    "astronaut": PhotoClip(
        "astronaut", "an astronaut",
        ("stethoscope", "jersey", "sweatshirt", "crash helmet", "neck brace", "bearskin", "magnetic compass",
         "space shuttle", "bobsled", "suit", "military uniform"),
    ),
    "chelsea": PhotoClip(
        "chelsea", "a cat",
        ("tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx", "leopard"),
    ),
    "coffee": PhotoClip(
        "coffee", "a cup of coffee",
        ("espresso", "cup", "coffee mug", "consomme", "eggnog", "soup bowl", "espresso maker", "coffeepot"),
    ),
    "rocket": PhotoClip(
        "rocket", "a rocket launch",
        ("missile", "projectile", "space shuttle", "drilling platform", "pole", "obelisk", "torch", "candle"),
    ),
    # skimage.data has no motorcycle_left(); it is the first image stereo_motorcycle() returns.
    "motorcycle_left": PhotoClip(
        "stereo_motorcycle", "a motorbike",
        ("moped", "motor scooter", "disk brake", "crash helmet", "mountain bike", "tricycle",
         "bicycle-built-for-two", "Model T"),
    ),
    "hubble_deep_field": PhotoClip(
        "hubble_deep_field", "galaxies in deep space",
        ("bubble", "nematode", "sea urchin", "flatworm", "jellyfish", "chiton", "spider web", "starfish",
         "fountain", "matchstick", "spotlight"),
    ),
}

MAX_ZOOM = 1.25
"""Crop side at its widest over its narrowest: the zoom never shows less than 80% of the widest view."""


def load_photo(name: str) -> np.ndarray:
    """The photo of ``PHOTOS[name]`` as a uint8 RGB array (H, W, 3)."""
    # scikit-image is a dev dependency: imported only when a photo is loaded
    from skimage import data
    from skimage.util import img_as_ubyte

    image = getattr(data, PHOTOS[name].loader)()
    if isinstance(image, tuple):  # stereo_motorcycle() -> (left, right, disparity)
        image = image[0]
    image = img_as_ubyte(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    return np.ascontiguousarray(image)


def _frames(photo: np.ndarray, count: int, size: tuple[int, int], seed: int) -> Iterator[np.ndarray]:
    """``count`` RGB frames of ``size`` (width, height) panning and zooming over ``photo``."""
    width, height = size
    rng = np.random.default_rng(seed)
    h, w = photo.shape[:2]
    # The widest crop of the output's aspect ratio; scale the photo so the narrowest crop maps 1:1
    # onto the output (the warp then only ever downsamples a little, never aliases much).
    widest = min(w / width, h / height)
    scale = MAX_ZOOM / widest
    photo = cv2.resize(photo, (round(w * scale), round(h * scale)),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    h, w = photo.shape[:2]
    zooms = (1.0, MAX_ZOOM) if rng.random() < 0.5 else (MAX_ZOOM, 1.0)  # zoom in or out
    # Where the crop's centre goes, as a fraction of the room it has at that zoom (0.5 = centred).
    starts, ends = rng.uniform(0.1, 0.9, 2), rng.uniform(0.1, 0.9, 2)
    for i in range(count):
        t = i / max(count - 1, 1)  # linear: every frame moves, none repeats
        zoom = zooms[0] + (zooms[1] - zooms[0]) * t
        crop_w, crop_h = width * MAX_ZOOM / zoom, height * MAX_ZOOM / zoom
        fx, fy = starts + (ends - starts) * t
        x0, y0 = (w - crop_w) * fx, (h - crop_h) * fy
        s = width / crop_w
        matrix = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)
        yield cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)


def make_photo_clip(name: str, path: Path, *, seconds: float = 2.0, fps: int = 12,
                    size: tuple[int, int] = (320, 240), seed: int = 0) -> Path:
    """Write a ``seconds`` long H.264 MP4 of ``size`` (width, height) panning over ``PHOTOS[name]``."""
    if name not in PHOTOS:
        raise KeyError(f"unknown photo {name!r}; known: {', '.join(PHOTOS)}")
    width, height = size
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"size must be positive and even for yuv420p, got {size}")
    count = max(round(seconds * fps), 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for rgb in _frames(load_photo(name), count, size, seed):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


def make_photo_clips(folder: Path, names: Sequence[str] | None = None, **kw) -> dict[str, Path]:
    """Write ``folder/<name>.mp4`` for each name (all of ``PHOTOS`` by default); ``kw`` go to make_photo_clip."""
    folder = Path(folder)
    return {name: make_photo_clip(name, folder / f"{name}.mp4", **kw) for name in (PHOTOS if names is None else names)}
