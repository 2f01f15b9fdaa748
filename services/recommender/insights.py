"""One replica's part of a video's creator insights (``shared/insights.py``): the reach over the partitions it
serves, and the tag and title suggestions from the catalogue's similar videos."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np

from services.recommender import metrics
from services.recommender.core.catalogue import VideoInfo, unit
from services.recommender.core.reach import ReachCount, first_day_views, suggestions
from services.recommender.core.stats import FirstViews
from services.recommender.engine import Recommender
from services.recommender.reach_index import active_since
from shared.events import InsightsCompleted
from shared.insights import FirstDayPart, InsightsPart, ReachPart, Suggestion

log = logging.getLogger(__name__)
SIMILAR = 50  # similar videos the suggestions are drawn from
CHUNK = 10  # users refreshed between two yields to the event loop (each is one catalogue search, ~1-5 ms)


def insights_part(rec: Recommender, video_id: str, partitions: list[int], now: float,
                  window_days: float | None = None) -> InsightsPart | None:
    """A catalogue video's part; None: the video is not in the catalogue."""
    info, vector = rec.catalogue.info.get(video_id), rec.catalogue.vector(video_id)
    if info is None or vector is None:
        return None
    return part_for(rec, vector, info, partitions, now, window_days)


def upload_part(rec: Recommender, done: InsightsCompleted, partitions: list[int], now: float,
                window_days: float | None = None) -> InsightsPart | str:
    """An unpublished upload's part from its ``insights.completed`` result; a str: why there is none."""
    if done.status != "ok":
        return done.error or "the upload could not be analysed"
    refusal = rec.catalogue.refusal(done.model_version or "", done.vector)
    if refusal is not None:
        return f"the upload's vector cannot be compared with the catalogue: {refusal}"
    info = VideoInfo(done.request_id, done.topic, done.creator_id, now, None, done.title,
                     tuple(c.name for c in done.concepts), tuple(done.tags), tuple(done.covers))
    return part_for(rec, unit(done.vector), info, partitions, now, window_days)


def part_for(rec: Recommender, vector: np.ndarray, info: VideoInfo, partitions: list[int], now: float,
             window_days: float | None) -> InsightsPart:
    s = rec.settings
    days = window_days or s.insights_window_days
    count = rec.reach.count(vector, partitions, active_since(now, days)) if rec.reach is not None else ReachCount()
    own = info.video_id
    similar = rec.catalogue.search(vector, SIMILAR, [own])
    infos = rec.catalogue.info
    tags, words = suggestions(similar, {v: infos[v].tags for v, _ in similar if v in infos},
                              {v: infos[v].title for v, _ in similar if v in infos}, rec.popularity.totals)
    out = lambda items: [Suggestion(text=x.text, score=x.score, evidence=list(x.evidence)) for x in items]
    first = first_day_views(similar, {v: infos[v].created_at for v, _ in similar if v in infos}, rec.first_views.views,
                            now, FirstViews.WINDOW_S)
    return InsightsPart(
        video_id=own, creator_id=info.creator_id, topic=info.topic, title=info.title, concepts=list(info.concepts),
        covers=list(info.covers), reach=ReachPart(total=count.total, by_topic=count.by_topic, hours=count.hours,
                                                  active_users=count.active_users, partitions=sorted(partitions)),
        tags=out(tags), title_words=out(words), similar_videos=len(similar), top_k=s.insights_top_k,
        first_day=None if first is None else FirstDayPart(views=round(first.views, 2), total=first.total,
                                                          peers=list(first.peers)),
        window_days=days)


async def keep_reach_fresh(rec: Recommender, quiet: Callable[[], bool] = lambda: True) -> None:
    """Refresh pending users' reach points every ``insights_refresh_s``, yielding to the event loop between
    chunks (runs for as long as the replica does). Events come first: while ``quiet()`` says the stream is busy, a
    round refreshes one chunk (bars go stale for minutes under sustained load, never for ever); when it is quiet,
    up to ``insights_refresh_batch``. Measured: refreshing at full rate under load cost 10 % of the events applied
    per second and doubled the freshness p99."""
    s = rec.settings
    while rec.reach is not None and s.insights_refresh_s > 0:
        await asyncio.sleep(s.insights_refresh_s)
        done = 0
        budget = s.insights_refresh_batch if quiet() else CHUNK
        while rec.reach.pending and done < budget:
            try:
                n = rec.reach.refresh(rec, min(CHUNK, budget - done))
            except Exception:  # a store error must not end the task: the users stay pending for the next round
                log.exception("reach refresh failed; retried next round")
                metrics.reach_refresh_errors.inc()
                break
            done += n
            metrics.reach_users_refreshed.inc(n)
            await asyncio.sleep(0)
        metrics.reach_pending.set(len(rec.reach.pending))
