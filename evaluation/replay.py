"""``clipstream eval replay``: prequential replay of an interaction log, ClipStream against baselines.

Protocol (no future leakage): events in timestamp order, ties in file order. The catalogue is
the set of items seen in any earlier event. An event is scored when its weight is > 0, its item
is in the catalogue and its user has an earlier event: before it is applied, every system ranks
its top 20 among catalogue items the user has not interacted with (a system that returns fewer
is filled from one fixed random order of items, shared by all, which also breaks ties);
NDCG@10 with the event's item as the one relevant item and Recall@20. Then every event is fed to
every system with its weight. ClipStream runs its service code: the same engine, state updates
and feed pipeline, on an embedded Qdrant shard; items without videos get their vector from their
title and tags through the encoder's text model. A log whose items are not all described (no items
file, or one that misses some) has no content to compare: ClipStream then runs with its vector sources,
vector features and diversity term off (``content_vectors``), on co-visitation, transitions, popularity
and freshness alone, and the catalogue holds placeholder directions that no score reads.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from evaluation.baselines import BASELINES, ScoreBaseline
from services.recommender.core.catalogue import Catalogue, VideoInfo
from services.recommender.core.stats import top_order
from services.recommender.engine import Recommender
from shared.events import WatchEvent
from shared.settings import RecommenderSettings, Settings
from shared.vectors import EdgeVectorStore

K_NDCG, K_RECALL = 10, 20
REPLAY_VISUAL_DIM = 128
"""The replay makes its own item vectors (its items have no video): the text model's embedding of title
and tags after a zero visual part of this size, laid out as the encoder's two-part fusion lays a vector
out. The zeros drop out of every cosine, so this size changes no score; it is not the service's video
size (``shared/vector_space.py``), since the replay builds its own store, of its vectors' size. Items
without metadata get a placeholder direction of the same size, seeded by the item id (the same in every run),
which no score reads: the catalogue needs a vector per video, and such a replay runs with content vectors off."""


@dataclass(frozen=True)
class Interaction:
    user: str
    item: str
    ts: float
    weight: float


class InteractionsError(ValueError):
    """An interactions file that cannot be replayed; the message names the file, the line and the problem."""


REQUIRED = ("user_id", "item_id", "timestamp")


def _ts(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _row(path: Path, line: int, r: dict[str, str | None]) -> Interaction:
    if any(r.get(c) in (None, "") for c in REQUIRED):
        empty = [c for c in REQUIRED if r.get(c) in (None, "")]
        raise InteractionsError(f"{path}:{line}: empty {', '.join(empty)}")
    try:
        ts = _ts(r["timestamp"])
    except ValueError:
        raise InteractionsError(f"{path}:{line}: timestamp {r['timestamp'][:40]!r} is neither a number (seconds) "
                                "nor an ISO 8601 time") from None
    raw = r.get("weight")
    try:
        weight = float(raw) if raw not in (None, "") else 1.0
    except ValueError:
        raise InteractionsError(f"{path}:{line}: weight {raw[:40]!r} is not a number") from None
    if not (np.isfinite(ts) and np.isfinite(weight)):
        raise InteractionsError(f"{path}:{line}: timestamp and weight must be finite")
    return Interaction(r["user_id"], r["item_id"], ts, weight)


def read_interactions(path: Path) -> list[Interaction]:
    """The log, in time order (ties in file order); InteractionsError for a file that is not one."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                raise InteractionsError(f"{path}: empty file (needs a header {','.join(REQUIRED)}[,weight])")
            missing = [c for c in REQUIRED if c not in reader.fieldnames]
            if missing:
                raise InteractionsError(f"{path}: missing column(s) {', '.join(missing)} "
                                        f"(needs {','.join(REQUIRED)}[,weight]; found {','.join(reader.fieldnames)})")
            rows = [_row(path, reader.line_num, r) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InteractionsError(f"{path}: cannot be read: {exc}") from None
    if not rows:
        raise InteractionsError(f"{path}: no interactions after the header")
    order = sorted(range(len(rows)), key=lambda i: (rows[i].ts, i))  # ties in file order
    return [rows[i] for i in order]


def read_items(path: Path) -> dict[str, dict]:
    """item_id -> title, tags (``|``-separated), topic; InteractionsError for a file without item_id."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if "item_id" not in (reader.fieldnames or []):
                raise InteractionsError(f"{path}: no item_id column (needs item_id[,title,tags,topic])")
            return {r["item_id"]: {"title": r.get("title") or "",
                                   "tags": [t for t in (r.get("tags") or "").split("|") if t],
                                   "topic": r.get("topic") or None} for r in reader}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InteractionsError(f"{path}: cannot be read: {exc}") from None


def item_vectors(items: list[str], meta: dict[str, dict], settings: Settings | None = None) -> dict[str, np.ndarray]:
    """Text vectors (title + tags) in the encoder's fused space; a random direction without metadata.
    ``settings``: the root (the text model, the encoder's text weight); read from the environment if not given."""
    from services.encoder.core.fusion import fuse
    from shared.text import TextEmbedder, video_text

    out: dict[str, np.ndarray] = {}
    with_meta = [i for i in items if i in meta]
    settings = settings or Settings()
    if with_meta:
        embedder = TextEmbedder(settings.models)
        text = embedder.embed([video_text(meta[i]["title"], meta[i]["tags"]) for i in with_meta])
        w = settings.encoder.text_weight
        fused = fuse([(np.zeros((len(with_meta), REPLAY_VISUAL_DIM), np.float32), 1 - w), (text, w)])
        out.update(zip(with_meta, fused))
        dim = REPLAY_VISUAL_DIM + embedder.dim
    else:
        dim = REPLAY_VISUAL_DIM + _text_dim(settings)
    for i in items:
        if i not in out:
            v = np.random.default_rng(zlib.crc32(i.encode())).normal(size=dim).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
    return out


def _text_dim(settings: Settings) -> int:
    """The text model's size from its manifest, without loading it (its default size when not prepared:
    with no metadata every vector is a random direction, and any one size serves)."""
    from shared.inference import ModelError
    from shared.vector_space import TEXT_DIM_DEFAULT, model_space

    try:
        return model_space(settings.models).search_dim
    except ModelError:
        return TEXT_DIM_DEFAULT


def to_event(ev: Interaction, n: int) -> WatchEvent:
    w = ev.weight
    action = ("share" if w >= 3 else "like" if w >= 2 else "complete") if w > 0 else \
        ("dislike" if w <= -1.5 else "skip" if w < 0 else "impression")
    return WatchEvent(event_id=f"r{n}", user_id=ev.user, video_id=ev.item, action=action, watch_ms=0 if w < 0 else 10000,
                      duration_ms=10000, ts=datetime.fromtimestamp(ev.ts, UTC))


class ClipStreamSystem:
    name = "clipstream"

    def __init__(self, vectors: dict[str, np.ndarray], meta: dict[str, dict], folder: Path,
                 settings: RecommenderSettings | None = None) -> None:
        dim = len(next(iter(vectors.values()))) if vectors else REPLAY_VISUAL_DIM  # the replay's own vectors' size
        self.store = EdgeVectorStore(folder / "videos", dim)
        self.vectors = vectors
        self.meta = meta
        self.content = bool(vectors) and all(i in meta for i in vectors)
        settings = settings or RecommenderSettings(state_dir=folder / "state", content_vectors=self.content)
        self.rec = Recommender(settings, Catalogue(self.store), "replay")
        self.rec.assign(0)
        self.n = 0

    def rank(self, user: str, k: int, exclude: set[str], now: float) -> list[str]:
        return [c.video_id for c in self.rec.feed(user, k, now=now) if c.video_id not in exclude]

    def update(self, ev: Interaction) -> None:
        if ev.item not in self.rec.catalogue:
            m = self.meta.get(ev.item, {})
            self.rec.catalogue.add(VideoInfo(ev.item, m.get("topic"), f"creator-{ev.item}", ev.ts, None,
                                             m.get("title", "")), self.vectors[ev.item])
        self.n += 1
        self.rec.apply(to_event(ev, self.n), 0)

    def close(self) -> None:
        self.rec.close()
        self.store.close()


class BaselineSystem:
    def __init__(self, model: ScoreBaseline) -> None:
        self.model = model
        self.name = model.name
        self._ties = np.zeros(0)  # the shared tiebreak of model.items, extended as items are added

    def rank(self, user: str, k: int, exclude: set[str], now: float, tiebreak: dict[str, int] | None = None) -> list[str]:
        items = self.model.items
        n = len(items)
        scores = np.asarray(self.model.scores(user, now), float)[:n].copy()
        for item in exclude:
            i = self.model.index.get(item)
            if i is not None:
                scores[i] = -np.inf
        ties = self._tiebreak(items, tiebreak)
        return [items[i] for i in top_order(scores, k, ties) if np.isfinite(scores[i])]

    def _tiebreak(self, items: list[str], tiebreak: dict[str, int] | None) -> np.ndarray:
        if len(self._ties) < len(items):  # items only grow: the new tail's ranks
            tail = items[len(self._ties):]
            new = (np.fromiter((tiebreak[it] for it in tail), float, len(tail)) if tiebreak
                   else np.arange(len(self._ties), len(items), dtype=float))
            self._ties = np.concatenate([self._ties, new])
        return self._ties[:len(items)]

    def update(self, ev: Interaction) -> None:
        self.model.update(ev.user, ev.item, ev.weight, ev.ts)

    def close(self) -> None:
        pass


def shared_tiebreak(interactions: list[Interaction], items_meta: dict[str, dict], seed: int = 0) -> dict[str, int]:
    """One fixed random order of every item, shared by all systems (fills short lists, breaks ties)."""
    all_items = sorted({ev.item for ev in interactions} | set(items_meta))
    rng = np.random.default_rng(seed)
    return {item: int(r) for item, r in zip(all_items, rng.permutation(len(all_items)))}


def replay(interactions: list[Interaction], items_meta: dict[str, dict], seed: int = 0,
           progress: bool = True, baselines: tuple[str, ...] | None = None) -> dict:
    """ClipStream's service code against the baselines named (default: all of them)."""
    tiebreak = shared_tiebreak(interactions, items_meta, seed)
    with tempfile.TemporaryDirectory(prefix="clipstream-replay-") as tmp:
        ours = ClipStreamSystem(item_vectors(sorted(tiebreak), items_meta), items_meta, Path(tmp))
        systems = [ours, *(BaselineSystem(cls()) for cls in BASELINES if baselines is None or cls.name in baselines)]
        return {**evaluate(interactions, systems, tiebreak, seed, progress), "content_vectors": ours.content}


def evaluate(interactions: list[Interaction], systems: list, tiebreak: dict[str, int], seed: int = 0,
             progress: bool = True, ours: str = "clipstream") -> dict:
    """The prequential protocol over ``systems`` (each with name, rank, update, close); ``ours`` is the
    system whose NDCG@10 is compared with the best of the others."""
    catalogue: set[str] = set()
    by_tiebreak = sorted(tiebreak, key=tiebreak.get)
    interacted: dict[str, set[str]] = defaultdict(set)
    ndcg = {s.name: defaultdict(list) for s in systems}
    recall = {s.name: defaultdict(list) for s in systems}
    shown = {s.name: set() for s in systems}
    seconds = {s.name: 0.0 for s in systems}
    events = interactions
    if progress:
        from shared.progress import progress as bar

        events = bar(interactions, "replaying")
    for ev in events:
        scored = ev.weight > 0 and ev.item in catalogue and bool(interacted[ev.user])
        for system in systems:
            t = time.perf_counter()
            if scored:
                exclude = interacted[ev.user]
                ranked = (system.rank(ev.user, K_RECALL, exclude, ev.ts, tiebreak) if isinstance(system, BaselineSystem)
                          else system.rank(ev.user, K_RECALL, exclude, ev.ts))
                ranked = [i for i in ranked if i in catalogue][:K_RECALL]
                if len(ranked) < K_RECALL:  # fill from the shared fixed order
                    have = set(ranked)
                    ranked += [i for i in by_tiebreak if i in catalogue and i not in exclude and i not in have][
                        : K_RECALL - len(ranked)]
                pos = ranked.index(ev.item) if ev.item in ranked else None
                ndcg[system.name][ev.user].append(1 / math.log2(pos + 2) if pos is not None and pos < K_NDCG else 0.0)
                recall[system.name][ev.user].append(1.0 if pos is not None else 0.0)
                shown[system.name].update(ranked)
            system.update(ev)
            seconds[system.name] += time.perf_counter() - t
        catalogue.add(ev.item)
        interacted[ev.user].add(ev.item)
    for system in systems:
        system.close()
    result = {"events": len(interactions), "scored": sum(len(v) for v in ndcg[ours].values()),
              "catalogue": len(catalogue), "systems": {}}
    for s in systems:
        flat_n = [x for v in ndcg[s.name].values() for x in v]
        flat_r = [x for v in recall[s.name].values() for x in v]
        result["systems"][s.name] = {
            "ndcg@10": round(float(np.mean(flat_n)), 4) if flat_n else 0.0,
            "recall@20": round(float(np.mean(flat_r)), 4) if flat_r else 0.0,
            "coverage": round(len(shown[s.name]) / max(1, len(catalogue)), 4),
            "events_per_s": round(len(interactions) / max(seconds[s.name], 1e-9), 1),
        }
    result["ratio"] = bootstrap_ratio(ndcg, seed, ours=ours)
    return result


def bootstrap_ratio(ndcg: dict[str, dict[str, list[float]]], seed: int, rounds: int = 1000,
                    ours: str = "clipstream") -> dict:
    """``ours``' NDCG@10 over the best other system's, with a per-user bootstrap 95% interval."""
    means = {name: np.mean([x for v in per_user.values() for x in v] or [0]) for name, per_user in ndcg.items()}
    best = max((n for n in means if n != ours), key=lambda n: means[n], default=None)
    users = sorted(ndcg[ours])
    if best is None or not users or means[best] == 0:
        return {"best_baseline": best, "ratio": None}
    mine = [np.asarray(ndcg[ours][u]) for u in users]
    theirs = [np.asarray(ndcg[best][u]) for u in users]
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(rounds):
        pick = rng.integers(0, len(users), len(users))
        a = np.concatenate([mine[i] for i in pick])
        b = np.concatenate([theirs[i] for i in pick])
        if b.mean() > 0:
            samples.append(a.mean() / b.mean())
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return {"best_baseline": best, "ratio": round(float(means[ours] / means[best]), 3),
            "ci95": [round(float(lo), 3), round(float(hi), 3)], "users": len(users)}


def run_replay(interactions: str, items: str | None, as_json: bool, limit: int | None = None,
               baselines: tuple[str, ...] | None = None) -> int:
    try:
        log = read_interactions(Path(interactions))[:limit]
        meta = read_items(Path(items)) if items else {}
    except InteractionsError as exc:
        raise SystemExit(f"eval replay: {exc}") from None
    result = replay(log, meta, progress=not as_json, baselines=baselines)
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"replay: {result['events']} events, {result['scored']} scored, catalogue {result['catalogue']}")
    for col in ("system", "NDCG@10", "Recall@20", "coverage", "events/s"):
        table.add_column(col)
    for name, m in sorted(result["systems"].items(), key=lambda kv: -kv[1]["ndcg@10"]):
        table.add_row(name, f"{m['ndcg@10']:.4f}", f"{m['recall@20']:.4f}", f"{m['coverage']:.3f}",
                      f"{m['events_per_s']:,.0f}")
    console = Console()
    console.print(table)
    r = result["ratio"]
    if r.get("ratio") is not None:
        console.print(f"ClipStream / {r['best_baseline']}: {r['ratio']:.2f}x NDCG@10 "
                      f"(95% per-user bootstrap interval {r['ci95'][0]:.2f}-{r['ci95'][1]:.2f}, {r['users']} users)")
    return 0
