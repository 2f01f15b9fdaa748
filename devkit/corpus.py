"""A corpus the project makes itself: short clips in visually distinct topics, with titles and tags.

Each topic has its own look (palette, texture, motion); each clip draws its own parameters
(colours, positions, speeds, seeds) and 1-3 scenes separated by hard cuts, so clips of one
topic resemble each other but every clip is still recognisable as itself. Used for training,
tests, the demo and benchmarks. Deterministic for a given seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from shared.content import TOPICS  # noqa: F401 (the corpus draws its topics from the models' list)

VOCAB = {
    "sports": (["goal", "match", "sprint", "dribble", "final", "training"], ["football", "running", "stadium", "team"]),
    "travel": (["sunset", "road trip", "mountains", "coastline", "city walk", "journey"], ["travel", "wanderlust", "explore"]),
    "food": (["recipe", "street food", "dessert", "brunch", "noodles", "tasting"], ["food", "cooking", "yum", "chef"]),
    "music": (["live set", "beat", "concert", "cover", "jam session", "drop"], ["music", "dj", "band", "live"]),
    "nature": (["forest", "river", "wildlife", "rain", "meadow", "waterfall"], ["nature", "outdoors", "calm", "green"]),
    "gaming": (["speedrun", "boss fight", "level up", "pixel art", "arcade", "combo"], ["gaming", "gamer", "retro", "play"]),
}
ADJECTIVES = ["amazing", "quick", "epic", "chill", "daily", "late night", "weekend", "first", "best", "tiny"]


@dataclass(frozen=True)
class ClipSpec:
    clip_id: str
    topic: str
    seed: int
    seconds: float
    fps: int
    width: int
    height: int
    title: str
    tags: tuple[str, ...]


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return y / h, x / w


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    import cv2

    small = rng.random((cells, max(2, cells * w // h))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _scene(topic: str, rng: np.random.Generator, h: int, w: int) -> Callable[[float], np.ndarray]:
    """A function of time (seconds) returning an RGB float frame in [0, 1]."""
    y, x = _grid(h, w)
    jitter = rng.uniform(-0.08, 0.08, 3).astype(np.float32)
    if topic == "sports":
        grass = np.array([0.15, 0.55, 0.2], np.float32) + jitter
        stripes = (np.sin(x * rng.uniform(12, 30)) > 0)[..., None] * 0.06
        base = np.clip(grass + stripes, 0, 1) * np.ones((h, w, 3), np.float32)
        line_x = rng.uniform(0.3, 0.7)
        base[np.abs(x - line_x) < 0.006] = 0.95
        balls = [(rng.uniform(0, 1, 2), rng.uniform(-1.2, 1.2, 2), rng.uniform(0.02, 0.05)) for _ in range(rng.integers(1, 4))]

        def frame(t: float) -> np.ndarray:
            img = base.copy()
            for pos, vel, r in balls:
                p = np.abs(((pos + vel * t) % 2.0) - 1.0)  # bounce inside the frame
                mask = (x - p[0]) ** 2 * (w / h) ** 2 + (y - p[1]) ** 2 < r ** 2
                img[mask] = 1.0
            return img
        return frame
    if topic == "travel":
        sky_top = np.array([0.2, 0.4, 0.85], np.float32) + jitter
        sky_bottom = np.array([0.95, 0.6, 0.3], np.float32) + jitter[::-1]
        horizon = rng.uniform(0.45, 0.7)
        freqs, phases = rng.uniform(3, 9, 3), rng.uniform(0, 6, 3)
        speed = rng.uniform(0.05, 0.2) * rng.choice([-1, 1])
        ground = np.array([0.25, 0.2, 0.3], np.float32) + jitter * 0.5

        def frame(t: float) -> np.ndarray:
            sky = sky_top + (sky_bottom - sky_top) * (y[..., None] / horizon)
            ridge = horizon - 0.12 * sum(np.sin((x + speed * t) * f + p) for f, p in zip(freqs, phases)) / 3 - 0.05
            img = np.where((y > ridge)[..., None], ground, sky)
            return np.clip(img, 0, 1)
        return frame
    if topic == "food":
        warm = np.array([0.75, 0.35, 0.12], np.float32) + jitter
        texture = _smooth_noise(rng, h, w, int(rng.integers(6, 14)))
        plates = [(rng.uniform(0.2, 0.8, 2), rng.uniform(0.12, 0.3), rng.uniform(0.6, 1.0, 3).astype(np.float32))
                  for _ in range(rng.integers(1, 3))]
        zoom = rng.uniform(0.02, 0.08)

        def frame(t: float) -> np.ndarray:
            img = warm * (0.6 + 0.5 * texture[..., None])
            s = 1 + zoom * t
            for c, r, col in plates:
                d = ((x - c[0]) * (w / h)) ** 2 + (y - c[1]) ** 2
                img = np.where((d < (r * s) ** 2)[..., None], col * (0.8 + 0.2 * texture[..., None]), img)
                img = np.where((d < (r * s * 0.55) ** 2)[..., None], warm[::-1] * 0.9, img)
            return np.clip(img, 0, 1)
        return frame
    if topic == "music":
        bars = int(rng.integers(6, 16))
        colors = rng.uniform(0.3, 1.0, (bars, 3)).astype(np.float32)
        bpm = rng.uniform(90, 150)
        phases = rng.uniform(0, 6.28, bars)

        def frame(t: float) -> np.ndarray:
            img = np.full((h, w, 3), 0.05, np.float32) + jitter.clip(0) * 0.3
            idx = np.minimum((x * bars).astype(int), bars - 1)
            level = 0.5 + 0.45 * np.sin(2 * np.pi * bpm / 60 * t + phases)
            on = (1 - y) < level[idx]
            img[on] = colors[idx][on]
            beat = (t * bpm / 60) % 1.0 < 0.12
            return np.clip(img * (1.3 if beat else 1.0), 0, 1)
        return frame
    if topic == "nature":
        leaf = np.array([0.2, 0.5, 0.15], np.float32) + jitter
        water = np.array([0.2, 0.45, 0.7], np.float32) + jitter[::-1]
        tex = _smooth_noise(rng, h, w, int(rng.integers(10, 24)))
        river_y, flow = rng.uniform(0.5, 0.8), rng.uniform(0.2, 0.6)

        def frame(t: float) -> np.ndarray:
            ripple = 0.5 + 0.5 * np.sin((x - flow * t) * 40 + y * 25)
            img = leaf * (0.5 + 0.7 * tex[..., None])
            river = np.abs(y - river_y) < 0.1
            img[river] = (water * (0.7 + 0.3 * ripple[..., None]))[river]
            return np.clip(img, 0, 1)
        return frame
    # gaming: saturated pixel tiles that scroll, palette of the scene
    tiles = int(rng.integers(8, 20))
    palette = rng.uniform(0, 1, (5, 3)).astype(np.float32)
    palette[:, int(rng.integers(0, 3))] = 1.0
    layout = rng.integers(0, 5, (tiles, tiles * 2))
    scroll = rng.uniform(1, 4)

    def frame(t: float) -> np.ndarray:
        ty = np.minimum((y * tiles).astype(int), tiles - 1)
        tx = ((x * tiles + scroll * t).astype(int)) % (tiles * 2)
        return palette[layout[ty, tx]]
    return frame


def spec_for(index: int, seed: int = 0, seconds: float = 4.0, fps: int = 24, width: int = 320,
             height: int = 180) -> ClipSpec:
    rng = np.random.default_rng([seed, index])
    topic = TOPICS[index % len(TOPICS)]
    nouns, tags = VOCAB[topic]
    title = f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)}".capitalize()
    chosen = tuple(sorted(set(rng.choice(tags, size=2, replace=False).tolist()) | {topic}))
    return ClipSpec(f"{topic}-{seed}-{index:05d}", topic, int(rng.integers(2**31)), seconds, fps, width, height, title, chosen)


def frames(spec: ClipSpec) -> Iterator[np.ndarray]:
    """RGB uint8 frames of a clip: 1-3 scenes of its topic, with hard cuts between them."""
    rng = np.random.default_rng(spec.seed)
    total = max(1, int(round(spec.seconds * spec.fps)))
    n_scenes = int(rng.integers(1, 4))
    cuts = np.sort(rng.choice(np.arange(spec.fps // 2, max(spec.fps // 2 + 1, total - spec.fps // 2)),
                              size=n_scenes - 1, replace=False)) if n_scenes > 1 and total > spec.fps else []
    scenes = [_scene(spec.topic, rng, spec.height, spec.width) for _ in range(len(cuts) + 1)]
    # a per-clip colour grade, so that colour alone does not tell topics apart
    grade = (np.eye(3) + rng.normal(0, 0.18, (3, 3))).astype(np.float32)
    bounds = [0, *cuts, total]
    for s, scene in enumerate(scenes):
        for i in range(bounds[s], bounds[s + 1]):
            yield (np.clip(scene(i / spec.fps) @ grade.T, 0, 1) * 255).astype(np.uint8)


def write_video(path: Path, frame_iter, fps: int, width: int, height: int, audio: np.ndarray | None = None,
                sample_rate: int = 22050, gop: int | None = None, crf: int = 23) -> Path:
    """Encode RGB frames as H.264 (+ mono AAC from float samples in [-1, 1]) with PyAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": str(crf), **({"g": str(gop)} if gop else {})}
        stream_a = None
        if audio is not None:
            stream_a = out.add_stream("aac", rate=sample_rate)
            stream_a.layout = "mono"
        for img in frame_iter:
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        out.mux(video.encode())
        if stream_a is not None:
            chunk = 1024
            for start in range(0, len(audio), chunk):
                part = audio[start:start + chunk].astype(np.float32)[None, :]
                frame = av.AudioFrame.from_ndarray(part, format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
                out.mux(stream_a.encode(frame))
            out.mux(stream_a.encode())
    return path


def soundtrack(spec: ClipSpec, sample_rate: int = 22050) -> np.ndarray:
    """A topic-flavoured tone: a base pitch per topic, a per-clip offset, a little noise."""
    rng = np.random.default_rng(spec.seed + 1)
    t = np.arange(int(spec.seconds * sample_rate)) / sample_rate
    base = 110 * 2 ** (TOPICS.index(spec.topic) / 3) * rng.uniform(0.9, 1.1)
    tone = 0.2 * np.sin(2 * np.pi * base * t) + 0.1 * np.sin(2 * np.pi * base * 1.5 * t)
    return (tone + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def write_clip(spec: ClipSpec, folder: Path, with_audio: bool = True) -> Path:
    path = folder / f"{spec.clip_id}.mp4"
    return write_video(path, frames(spec), spec.fps, spec.width, spec.height,
                       soundtrack(spec) if with_audio else None, gop=spec.fps)


def _write_one(args: tuple[ClipSpec, str]) -> dict:
    spec, folder = args
    path = write_clip(spec, Path(folder))
    return {**asdict(spec), "tags": list(spec.tags), "file": path.name}


def make_corpus(folder: Path, count: int, seed: int = 0, workers: int = 2, progress: bool = True,
                **spec_kwargs) -> list[dict]:
    """Write ``count`` clips and ``manifest.jsonl`` into ``folder``; skips clips already there."""
    from concurrent.futures import ProcessPoolExecutor

    folder.mkdir(parents=True, exist_ok=True)
    specs = [spec_for(i, seed, **spec_kwargs) for i in range(count)]
    todo = [(s, str(folder)) for s in specs if not (folder / f"{s.clip_id}.mp4").exists()]
    if todo:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(_write_one, todo, chunksize=4)
            if progress:
                from shared.progress import progress as bar

                results = bar(results, f"making {len(todo)} clips", total=len(todo))
            list(results)
    rows = [{**asdict(s), "tags": list(s.tags), "file": f"{s.clip_id}.mp4"} for s in specs]
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows
