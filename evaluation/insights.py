"""``clipstream eval insights``: does the reach forecast rank new videos by the views they go on to get?

Backtest on a replayed log (events in time order through the recommender's own engine and
:class:`~services.recommender.reach_index.ReachIndex`, on embedded Qdrant shards). An item's *first
appearance* (its first event) stands for its publication: just before that event, its reach forecast is
the number of users active in the ``active_days`` before who would have it among their top-k nearest
catalogue items (their bars refreshed at most every ``refresh_s`` of log time, as the service refreshes them
in the background). Its outcome is the events it gets in the ``window_days`` from its first appearance.
The baseline, in the same run, is the popularity of its topic: the events of items of its topic in the
``active_days`` before. Reported: Spearman correlation of each with the outcome, and their difference with
an item bootstrap 95% interval. Items first seen in the log's first ``warmup`` share (no audience yet) or
whose window runs past the log's end are left out.

Item vectors are the replay's (``evaluation/replay.py``): the text model's embedding of title and tags, the
only content a log's items have; the forecast can only tell apart what that content tells apart.
"""

from __future__ import annotations

import bisect
import json
import tempfile
from collections import Counter, deque
from pathlib import Path

import numpy as np

from evaluation.replay import (
    Interaction,
    InteractionsError,
    item_vectors,
    read_interactions,
    read_items,
    to_event,
)
from services.recommender.core.catalogue import Catalogue, VideoInfo
from services.recommender.engine import Recommender
from services.recommender.insights import part_for
from services.recommender.reach_index import ReachIndex
from shared.settings import RecommenderSettings
from shared.vectors import EdgeVectorStore

DAY = 86400.0


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties averaged."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    r = np.empty(len(x), float)
    r[order] = np.arange(1, len(x) + 1)
    _, first, counts = np.unique(sorted_x, return_index=True, return_counts=True)
    for start, n in zip(first, counts):
        if n > 1:
            r[order[start:start + n]] = start + (n + 1) / 2
    return r


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = ranks(np.asarray(x, float)), ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def topic_of(meta: dict) -> str | None:
    """An item's topic: its topic column, else its first tag (a category)."""
    return meta.get("topic") or (meta.get("tags") or [None])[0]


def outcomes(interactions: list[Interaction]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for ev in interactions:
        out.setdefault(ev.item, []).append(ev.ts)  # already in time order
    return out


def forecasts(interactions: list[Interaction], meta: dict[str, dict], folder: Path, active_days: float,
              top_k: int, refresh_s: float, warmup: float, progress: bool
              ) -> list[tuple[str, float, int, int, float, int]]:
    """(item, first appearance, forecast reach, topic popularity, first-day views estimate, the reached users'
    events) per item first seen after the warm-up: the reach, its events and the estimate as the service's
    ``/v1/insights`` computes them."""
    items = sorted({ev.item for ev in interactions})
    vectors = item_vectors(items, meta)
    dim = len(next(iter(vectors.values())))
    stores = [EdgeVectorStore(folder / "videos", dim), EdgeVectorStore(folder / "users", dim)]
    settings = RecommenderSettings(state_dir=folder / "state", learn_fraction=0.0, insights_top_k=top_k)
    rec = Recommender(settings, Catalogue(stores[0]), "backtest")
    rec.reach = ReachIndex(stores[1], top_k)
    rec.assign(0)
    start, end = interactions[0].ts, interactions[-1].ts
    warm = start + warmup * (end - start)
    recent: deque[tuple[float, str]] = deque()
    by_topic: Counter[str] = Counter()
    out = []
    last_refresh = -np.inf
    try:
        from rich.progress import track

        steps = track(enumerate(interactions), total=len(interactions), description="backtest",
                      disable=not progress, transient=True)
        for n, ev in steps:
            while recent and recent[0][0] < ev.ts - active_days * DAY:
                by_topic[recent.popleft()[1]] -= 1
            topic = topic_of(meta.get(ev.item, {}))
            if ev.item not in rec.catalogue:
                title = meta.get(ev.item, {}).get("title", "")
                info = VideoInfo(ev.item, topic, f"creator-{ev.item}", ev.ts, None, title)
                if ev.ts >= warm:
                    if ev.ts - last_refresh >= refresh_s:
                        while rec.reach.pending:
                            rec.reach.refresh(rec, 1000)
                        last_refresh = ev.ts
                    part = part_for(rec, vectors[ev.item], info, [0], ev.ts, active_days)
                    first_day = part.first_day.views if part.first_day is not None else 0.0
                    out.append((ev.item, ev.ts, part.reach.total, by_topic[topic] if topic else 0, first_day,
                                sum(part.reach.hours)))
                rec.catalogue.add(info, vectors[ev.item])
            rec.apply(to_event(ev, n), 0)
            if topic:
                recent.append((ev.ts, topic))
                by_topic[topic] += 1
    finally:
        rec.close()
        for s in stores:
            s.close()
    return out


def backtest(interactions: list[Interaction], meta: dict[str, dict], active_days: float = 7.0,
             window_days: float = 7.0, top_k: int = 100, refresh_s: float = 3600.0, warmup: float = 0.1,
             seed: int = 0, rounds: int = 1000, progress: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="clipstream-insights-") as tmp:
        rows = forecasts(interactions, meta, Path(tmp), active_days, top_k, refresh_s, warmup, progress)
    seen = outcomes(interactions)
    end = interactions[-1].ts
    kept = [row for row in rows if row[1] + window_days * DAY <= end]
    if len(kept) < 10:
        raise InteractionsError(f"only {len(kept)} items first appear after the warm-up with a whole "
                                f"{window_days:g}-day window before the log ends: too few to correlate")
    views = np.array([bisect.bisect_right(seen[item], t + window_days * DAY) - bisect.bisect_left(seen[item], t)
                      for item, t, *_ in kept], float)
    reach, popularity, first_day, events = (np.array([row[i] for row in kept], float) for i in (2, 3, 4, 5))
    ours, base, first = spearman(reach, views), spearman(popularity, views), spearman(first_day, views)
    weighted = spearman(events, views)
    ci, first_ci, events_ci = (difference_interval(x, popularity, views, seed, rounds)
                               for x in (reach, first_day, events))
    return {"items": len(kept), "spearman_reach": round(ours, 4), "spearman_topic_popularity": round(base, 4),
            "difference": round(ours - base, 4), "difference_ci95": ci,
            "spearman_reach_events": round(weighted, 4), "reach_events_difference": round(weighted - base, 4),
            "reach_events_difference_ci95": events_ci,
            "spearman_first_day_views": round(first, 4), "first_day_difference": round(first - base, 4),
            "first_day_difference_ci95": first_ci,
            "mean_reach": round(float(reach.mean()), 2), "items_with_reach": int((reach > 0).sum()),
            "mean_views": round(float(views.mean()), 2), "mean_first_day_estimate": round(float(first_day.mean()), 2),
            "settings": {"active_days": active_days, "window_days": window_days, "top_k": top_k,
                         "refresh_s": refresh_s, "warmup": warmup, "bootstrap_rounds": rounds}}


def difference_interval(ours: np.ndarray, base: np.ndarray, outcome: np.ndarray, seed: int, rounds: int
                        ) -> list[float]:
    """Item-bootstrap 95% interval of Spearman(ours, outcome) - Spearman(base, outcome)."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(rounds):
        pick = rng.integers(0, len(outcome), len(outcome))
        diffs.append(spearman(ours[pick], outcome[pick]) - spearman(base[pick], outcome[pick]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def run_insights_backtest(interactions: str, items: str | None, as_json: bool, active_days: float,
                          window_days: float) -> int:
    try:
        log = read_interactions(Path(interactions))
        meta = read_items(Path(items)) if items else {}
        result = backtest(log, meta, active_days, window_days, progress=not as_json)
    except InteractionsError as exc:
        raise SystemExit(f"error: {exc}") from None
    if as_json:
        print(json.dumps(result))
    else:
        print(f"{result['items']} items: Spearman with views in the {window_days:g} days after first appearance: "
              f"reach forecast {result['spearman_reach']:+.3f}, topic popularity "
              f"{result['spearman_topic_popularity']:+.3f}; difference {result['difference']:+.3f} "
              f"(95% interval {result['difference_ci95'][0]:+.3f} to {result['difference_ci95'][1]:+.3f}); the "
              f"reached users' events {result['spearman_reach_events']:+.3f}, difference "
              f"{result['reach_events_difference']:+.3f} (95% interval "
              f"{result['reach_events_difference_ci95'][0]:+.3f} to {result['reach_events_difference_ci95'][1]:+.3f}); "
              f"first-day "
              f"views estimate {result['spearman_first_day_views']:+.3f}, difference "
              f"{result['first_day_difference']:+.3f} (95% interval {result['first_day_difference_ci95'][0]:+.3f} "
              f"to {result['first_day_difference_ci95'][1]:+.3f})")
    return 0
