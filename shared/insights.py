"""Creator insights: what a recommender replica answers for one video (:class:`InsightsPart`), and what the
gateway publishes from the replicas' parts (:func:`combine`), with the privacy floor applied.

The floor: no figure is published that is computed from fewer than ``floor`` users. A forecast over fewer
active users than that, a reach under it, a topic with fewer reached users, and the publishing hours of
fewer reached users are withheld, each with the reason; a platform with no active users at all gets a
forecast of 0 with the reason, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

HOURS = 24


class Suggestion(BaseModel):
    text: str
    score: float
    evidence: list[str] = Field(description="videos it comes from, strongest first")


class ReachPart(BaseModel):
    total: int = Field(ge=0)
    by_topic: dict[str, int] = {}
    hours: list[int] = Field(default_factory=lambda: [0] * HOURS, min_length=HOURS, max_length=HOURS)
    active_users: int = Field(0, ge=0)
    partitions: list[int] = []


class FirstDayPart(BaseModel):
    views: float = Field(ge=0)
    total: float = Field(ge=0)
    peers: list[str] = []


class InsightsPart(BaseModel):
    """One recommender replica's answer for one video (its reach over the partitions it serves)."""
    video_id: str
    creator_id: str
    topic: str | None = None
    title: str = ""
    concepts: list[str] = []
    covers: list[str] = []
    reach: ReachPart
    tags: list[Suggestion] = []
    title_words: list[Suggestion] = []
    similar_videos: int = 0
    first_day: FirstDayPart | None = None
    top_k: int = 0
    window_days: float = 0.0


class UploadPart(BaseModel):
    """One replica's answer for an unpublished upload: pending until the encoder's result reaches it."""
    request_id: str
    status: Literal["pending", "ok", "failed"]
    creator_id: str | None = None
    error: str | None = None
    part: InsightsPart | None = None


class Reach(BaseModel):
    users: int | None = Field(description="users active in the window who would have the video among their top-k "
                                          "candidates today (None: withheld, see reason)")
    by_topic: dict[str, int] = Field(description="reached users by their favourite topic (topics under the privacy "
                                                 "floor left out)")
    active_users: int | None
    events: int | None = Field(None, description="the reached users' events so far, all told: the reach weighted by "
                                                 "how much each of them watches (None: withheld with the reach)")
    rounded_to: int = Field(1, description="the counts are rounded to multiples of this (1: exact)")
    reason: str


class FirstDayViews(BaseModel):
    views: float | None = Field(description="engaged views expected on the video's first day: the mean of its most "
                                            "similar videos' own first days (None: none yet, or withheld; see reason)")
    peers: list[str] = Field(description="the similar videos it averages, most similar first")
    reason: str


class PublishTime(BaseModel):
    hours_utc: list[int] = Field(description="hours of the day (UTC) when the reached users are most active, "
                                             "busiest first")
    reason: str


class Insights(BaseModel):
    video_id: str
    creator_id: str
    topic: str | None
    reach: Reach
    first_day_views: FirstDayViews
    best_time: PublishTime
    covers: list[str] = Field(description="cover candidates, best first: paths relative to the encoder's artefacts "
                                          "folder")
    tags: list[Suggestion]
    title_words: list[Suggestion]
    concepts: list[str]
    replicas: int
    partitions_missing: list[int] = Field(description="watch.events partitions no replica answered for: the counts "
                                                      "leave their users out")


class UploadInsights(BaseModel):
    """The gateway's answer to a poll: the insights once the upload is analysed, or why it could not be."""
    request_id: str
    status: Literal["pending", "ok", "failed"]
    error: str | None = None
    insights: Insights | None = None


def withheld(floor: int, what: str) -> str:
    """The reason a figure is withheld; never the figure itself (that is what the floor keeps)."""
    return f"withheld: {what} counts fewer users than the privacy floor of {floor}"


def rounded(n: int, step: int) -> int:
    """``n`` to the nearest multiple of ``step`` (halves up), never 0 for a count above 0."""
    if step <= 1 or n <= 0:
        return n
    return max(step, (n + step // 2) // step * step)


def combine(parts: Sequence[InsightsPart], floor: int, partitions: int,
            creator_round_to: int | None = None) -> Insights:
    """The replicas' parts as one answer: counts summed over distinct partitions, the floor applied to the exact
    counts. ``creator_round_to``: a creator's view, whose user counts are published rounded to multiples of it,
    and withheld while some partition is missing (the full answer minus a partial one is that partition's count)."""
    first = parts[0]
    seen: set[int] = set()
    total = active = 0
    topics: dict[str, int] = {}
    hours = [0] * HOURS
    for part in parts:
        if set(part.reach.partitions) & seen:  # a partition answered twice (a rebalance): count it once
            continue
        seen |= set(part.reach.partitions)
        total += part.reach.total
        active += part.reach.active_users
        for topic, n in part.reach.by_topic.items():
            topics[topic] = topics.get(topic, 0) + n
        hours = [a + b for a, b in zip(hours, part.reach.hours)]
    missing = sorted(set(range(partitions)) - seen)
    step = creator_round_to or 1
    if creator_round_to is not None and missing:
        reach = Reach(users=None, by_topic={}, active_users=None, rounded_to=step,
                      reason=f"withheld: partitions {missing} did not answer, and a partial count set against a full "
                             "one would tell a few users apart; ask again")
    else:
        reach = reach_of(total, active, topics, sum(hours), floor, step, f"the last {first.window_days:g} days",
                         first.top_k)
    if reach.users and any(hours):
        ranked = sorted((h for h in range(HOURS) if hours[h] > 0), key=lambda h: (-hours[h], h))[:3]
        best = PublishTime(hours_utc=ranked, reason=f"when the {reach.users} reached users watch most (their events "
                                                    "by hour of the day, UTC)")
    else:
        best = PublishTime(hours_utc=[], reason=reach.reason if reach.users is None else
                           "no reached users to time it for")
    return Insights(video_id=first.video_id, creator_id=first.creator_id, topic=first.topic, reach=reach,
                    first_day_views=first_day_of(parts, floor, step), best_time=best, covers=first.covers[:3],
                    tags=first.tags, title_words=first.title_words, concepts=first.concepts, replicas=len(parts),
                    partitions_missing=missing)


def reach_of(total: int, active: int, topics: dict[str, int], events: int, floor: int, step: int, window: str,
             top_k: int) -> Reach:
    """The reach as published: withheld under the floor (read on the exact counts), else its counts rounded to
    multiples of ``step`` (1: exact), each on its own, so the topics need not add up to the total exactly.
    ``events``: the reached users' events, all told."""
    if active == 0:
        return Reach(users=0, by_topic={}, active_users=0, events=0, rounded_to=step,
                     reason=f"no users active in {window} yet: nobody to reach")
    if active < floor:
        return Reach(users=None, by_topic={}, active_users=None, rounded_to=step, reason=withheld(floor, "the audience"))
    audience = rounded(active, step)
    if 0 < total < floor:
        return Reach(users=None, by_topic={}, active_users=audience, rounded_to=step, reason=withheld(floor, "the reach"))
    users, watched = rounded(total, step), rounded(events, step)
    about = "" if step <= 1 else f" (counts rounded to multiples of {step})"
    return Reach(users=users, by_topic={t: rounded(n, step) for t, n in topics_shown(topics, total, floor).items()},
                 active_users=audience, events=watched, rounded_to=step,
                 reason=f"{users} of {audience} users active in {window} have it among their top {top_k} candidates "
                        f"(cosine of their long-term vector at least that of their {top_k}-th nearest video), with "
                        f"{watched} events between them{about}")


def topics_shown(topics: dict[str, int], total: int, floor: int) -> dict[str, int]:
    """The reach by topic that may be published beside ``total``: topics of at least ``floor`` users, the largest
    first, and the rest as "(other topics)". The rest is what ``total`` minus the topics shown gives anyone, so
    it must reach the floor too: while it is above 0 and under it, the smallest topic shown joins it
    (complementary suppression, as statistical offices publish tables)."""
    shown = {t: n for t, n in sorted(topics.items(), key=lambda kv: (-kv[1], kv[0])) if n >= floor}
    rest = total - sum(shown.values())
    while 0 < rest < floor and shown:
        rest += shown.popitem()[1]
    if rest >= floor:
        shown["(other topics)"] = rest
    return shown


def first_day_of(parts: Sequence[InsightsPart], floor: int, step: int = 1) -> FirstDayViews:
    """The first-day estimate (every replica computes it from the same merged statistics: the first one that has
    it), withheld when its peers' first days count fewer views than the floor; to whole views in a creator's view
    (``step`` > 1), so the mean times the peers is not their exact sum. These are views of published videos, which
    platforms show anyway, not users: rounding them to ``step`` would turn a mean of 3 into 0 or 10."""
    est = next((p.first_day for p in parts if p.first_day is not None), None)
    if est is None:
        return FirstDayViews(views=None, peers=[], reason="no similar video has had its first day yet")
    if est.total < floor:
        return FirstDayViews(views=None, peers=[], reason=f"withheld: the similar videos' first days count fewer "
                                                          f"views than the privacy floor of {floor}")
    views = est.views if step <= 1 else float(round(est.views))
    about = "" if step <= 1 else ", rounded to whole views"
    return FirstDayViews(views=views, peers=est.peers, reason=f"the mean first-day views of the {len(est.peers)} "
                         f"most similar videos whose first day is over{about}")


class TrendItem(BaseModel):
    kind: str = Field(description="topic or concept")
    name: str
    views: int = Field(description="engaged views in the window")
    before: int = Field(description="engaged views in the window before it")
    z: float = Field(description="(views - before) / sqrt(max(before, 1)): the rise in Poisson standard deviations")


class Trends(BaseModel):
    window: str
    start: float = Field(description="the window's start, Unix seconds")
    end: float = Field(description="the window's end: the last complete 10-minute bucket")
    rising: list[TrendItem]
    rule: str
