"""Creator insights from the recommender's state: who a video would reach, when they watch, what to tag it.

A user is *reached* by a video when the video would be among their top-k candidates today: the cosine of
their long-term vector and the video is at least their *bar*, the similarity of their k-th nearest catalogue
video. The bar is kept per user (``reach_index.py`` refreshes it in Qdrant); :func:`brute_force` is the
reference the Qdrant count is checked against. Pure functions: numbers and mappings in, numbers out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

HOURS = 24
SLACK = 1e-5  # float32 rounding between a bar's search and a reach search
NO_BAR = -1.0  # the bar of a user when the catalogue is empty: every video reaches them
_WORD = re.compile(r"[^\W\d_][\w'-]{2,}", re.UNICODE)
STOPWORDS = frozenset(["the", "and", "for", "with", "from", "this", "that", "your", "you", "our", "are", "was", "were", "how", "what", "why", "when", "who", "into", "over", "under", "about", "video", "clip", "part", "new", "best", "top", "day"])


@dataclass
class ReachCount:
    """Users reached by one video on one replica (raw counts: the gateway applies the privacy floor)."""
    total: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)  # by the reached users' favourite topic
    hours: list[int] = field(default_factory=lambda: [0] * HOURS)  # the reached users' events by hour (UTC)
    active_users: int = 0  # users counted against (active in the window)


def kth_similarity(scores: Sequence[float], k: int) -> float:
    """A user's bar: the k-th best of ``scores`` (their nearest catalogue videos' similarities, any order);
    the lowest when there are fewer than k, :data:`NO_BAR` when there are none."""
    if not scores:
        return NO_BAR
    ordered = sorted(scores, reverse=True)
    return float(ordered[min(k, len(ordered)) - 1])


def favourite_topic(recent: Sequence[str], topics: Mapping[str, str | None]) -> str | None:
    """The topic most of ``recent`` (video ids, oldest first) belong to; a tie goes to the most recent."""
    counts: Counter[str] = Counter()
    last: dict[str, int] = {}
    for i, video in enumerate(recent):
        topic = topics.get(video)
        if topic:
            counts[topic] += 1
            last[topic] = i
    if not counts:
        return None
    return max(counts, key=lambda t: (counts[t], last[t]))


def brute_force(video: np.ndarray, users: np.ndarray, bars: np.ndarray) -> np.ndarray:
    """Which rows of ``users`` (n, d) the ``video`` (d,) reaches: cosine >= the row's bar (reference count)."""
    if len(users) == 0:
        return np.zeros(0, bool)
    u = users / (np.linalg.norm(users, axis=1, keepdims=True) + 1e-12)
    v = video / (np.linalg.norm(video) + 1e-12)
    return (u @ v) >= bars


def tally(hits: Iterable[tuple[float, Mapping]], active_users: int, slack: float = SLACK) -> ReachCount:
    """Count the hits (score, the user's payload: ``bar``, ``topic``, ``hours``) that clear their own bar.
    ``slack`` absorbs float32 rounding between the bar's search and this one."""
    out = ReachCount(active_users=active_users)
    for score, payload in hits:
        if score + slack < float(payload.get("bar", NO_BAR)):
            continue
        out.total += 1
        topic = payload.get("topic") or "(none)"
        out.by_topic[topic] = out.by_topic.get(topic, 0) + 1
        hours = payload.get("hours") or ()
        if len(hours) == HOURS:
            for h, n in enumerate(hours):
                out.hours[h] += int(n)
    return out


def words(title: str) -> list[str]:
    """A title's content words, lower-cased, each once, in order."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(title.lower()):
        if w not in STOPWORDS:
            seen.setdefault(w, None)
    return list(seen)


@dataclass(frozen=True)
class Suggestion:
    text: str
    score: float
    evidence: tuple[str, ...]  # the videos it comes from, strongest first


def suggestions(similar: Sequence[tuple[str, float]], tags: Mapping[str, Sequence[str]],
                titles: Mapping[str, str], engagement: Mapping[str, float], n: int = 10
                ) -> tuple[list[Suggestion], list[Suggestion]]:
    """(tags, title words) from ``similar`` videos (id, similarity), each weighted by how similar the video is
    and how well it did (log of 1 + its engagement): a tag of a close video that many watched comes first."""

    def rank(items: Mapping[str, Sequence[str]]) -> list[Suggestion]:
        score: dict[str, float] = {}
        evidence: dict[str, list[tuple[float, str]]] = {}
        for video, sim in similar:
            weight = max(0.0, sim) * float(np.log1p(max(0.0, engagement.get(video, 0.0))))
            if weight <= 0:
                continue
            for text in dict.fromkeys(t.strip().lower() for t in items.get(video, ()) if t.strip()):
                score[text] = score.get(text, 0.0) + weight
                evidence.setdefault(text, []).append((weight, video))
        ranked = sorted(score, key=lambda t: (-score[t], t))[:n]
        return [Suggestion(t, round(score[t], 4), tuple(v for _, v in sorted(evidence[t], reverse=True)[:5]))
                for t in ranked]

    return rank(tags), rank({v: words(titles.get(v, "")) for v, _ in similar})


FIRST_DAY_PEERS = 20  # similar videos past their first day that a first-day estimate averages


@dataclass(frozen=True)
class FirstDay:
    """A first-day views estimate: the mean of the peers' own first days, and which videos they are."""
    views: float
    total: float  # the peers' first-day views summed (what the privacy floor is checked on)
    peers: tuple[str, ...]  # most similar first


def first_day_views(similar: Sequence[tuple[str, float]], created_at: Mapping[str, float],
                    views: Callable[[str], float], now: float, window_s: float,
                    peers: int = FIRST_DAY_PEERS) -> FirstDay | None:
    """A new video's first-day views, estimated from ``similar`` videos (id, similarity; most similar first)
    whose first day is over (published at least ``window_s`` before ``now``): the mean of what the ``peers``
    most similar of them got on theirs. Calibrated in that it is counted in the unit it forecasts (observed
    first-day views), not a score. None: no similar video has had its first day yet."""
    done = [v for v, _ in similar if v in created_at and created_at[v] + window_s <= now][:peers]
    if not done:
        return None
    counts = [views(v) for v in done]
    return FirstDay(float(np.mean(counts)), float(sum(counts)), tuple(done))
