"""A feed is a pipeline of named stages: sources -> filters -> scorer -> selector.

Cheap filters run before the scorer; every stage is named, and the runner reports each
stage's time and counts to an observer (the service turns them into metrics labelled by stage).
Each item carries the reason it is there. Cold start is explicit: a user without a vector gets
trending and new videos; a new video reaches feeds through the fresh source.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from services.recommender.core.catalogue import Catalogue
from services.recommender.core.features import (
    NEXT_WEIGHTS,
    RECENT,
    CovisitArrays,
    VoteArrays,
    candidate_features,
    covisit_votes,
    sequential_votes,
    session_votes,
)
from services.recommender.core.sessions import SessionIndex
from services.recommender.core.stats import CoVisitation, Popularity, Transitions
from services.recommender.core.user_state import UserState


@dataclass
class Candidate:
    video_id: str
    source: str
    reason: str
    score: float = 0.0


@dataclass
class FeedContext:
    user_id: str
    state: UserState
    k: int
    now: float
    catalogue: Catalogue
    popularity: Popularity
    covisit: CoVisitation
    weights: np.ndarray  # one per feature in features.FEATURES
    n: int = 100
    fresh_window_s: float = 86400.0
    mmr_lambda: float = 0.8
    creator_cap: int = 3
    votes: dict[int, dict[str, float]] | None = None  # co-visit votes per window, computed once per request
    vote_arrays: CovisitArrays | None = None  # the same votes as arrays (features.py), computed once per request
    transitions: Transitions | None = None  # what users watched next (None: no sequential signal)
    next_votes: dict[str, float] | None = None  # sequential votes, computed once per request
    content: bool = True  # False: the vectors carry no content (vector sources, features and diversity off)
    sessions: SessionIndex | None = None  # the user's partition's session index (None: no session-kNN)
    session_votes: dict[str, float] | None = None  # session-kNN votes, computed once per request
    knn_arrays: VoteArrays | None = None  # the same votes as arrays (features.py), computed once per request
    nearest: dict[bytes, list[str]] = field(default_factory=dict)  # vector bytes -> its nearest videos, per request


Observer = Callable[[str, float, int, int], None]  # stage, seconds, items in, items out


def _nearest_recent(ctx: FeedContext, vec: np.ndarray) -> str | None:
    recent = [v for v in ctx.state.recent_positive[-10:] if v in ctx.catalogue]
    if not recent:
        return None
    sims = [float(vec @ ctx.catalogue.vectors[r]) for r in recent]
    return recent[int(np.argmax(sims))]


class UserVectorSource:
    """Nearest videos to one of the user's vectors (the long-term or the session one)."""

    def __init__(self, name: str, vector: str) -> None:
        self.name = name
        self.vector = vector

    def fetch(self, ctx: FeedContext) -> list[Candidate]:
        query = getattr(ctx.state, self.vector)
        if query is None or not ctx.content or not len(ctx.catalogue):
            return []
        key = np.ascontiguousarray(query).tobytes()  # a new user's two vectors are one: searched once
        if key not in ctx.nearest:
            ctx.nearest[key] = [v for v, _ in ctx.catalogue.search(query, ctx.n, ctx.state.seen)]
        return [Candidate(v, self.name, "") for v in ctx.nearest[key]]


def _explained(ctx: FeedContext, source: str, votes: dict[str, float], rows: Mapping[str, Mapping[str, float]],
               last: int, reason: str) -> list[Candidate]:
    """The ``ctx.n`` strongest ``votes``, each with the most recent of the user's last ``last`` positives whose
    neighbour row holds it as the reason ("<reason> <video>")."""
    top = heapq.nlargest(ctx.n, votes.items(), key=lambda kv: kv[1])
    recent = ctx.state.recent_positive[-last:]
    out = []
    for video, _ in top:
        because = next((r for r in reversed(recent) if video in rows.get(r, ())), recent[-1])
        out.append(Candidate(video, source, f"{reason} {because}"))
    return out


class CoVisitSource:
    """Videos watched together with the user's recent ones, by decayed, popularity-damped votes."""

    name = "covisit"

    def fetch(self, ctx: FeedContext) -> list[Candidate]:
        return _explained(ctx, self.name, covisit_votes(ctx), ctx.covisit.counts, RECENT, "watched together with")


class SequentialSource:
    """What users watched next after the user's last few positives (sequential rules)."""

    name = "next"

    def fetch(self, ctx: FeedContext) -> list[Candidate]:
        rows = ctx.transitions.counts if ctx.transitions is not None else {}
        return _explained(ctx, self.name, sequential_votes(ctx), rows, len(NEXT_WEIGHTS), "watched next after")


class SessionKNNSource:
    """What users with overlapping recent positives liked (session-kNN)."""

    name = "sessions"

    def fetch(self, ctx: FeedContext) -> list[Candidate]:
        top = heapq.nlargest(ctx.n, session_votes(ctx).items(), key=lambda kv: kv[1])
        return [Candidate(video, self.name, "liked in sessions like yours") for video, _ in top]


class TrendingSource:
    """The most popular videos of the last weeks (trending), then of today (hot) not among them."""

    name = "trending"

    def fetch(self, ctx: FeedContext) -> list[Candidate]:
        out, found = [], set()
        for hot, why in ((False, "trending in"), (True, "popular today in")):
            for video, _ in ctx.popularity.top(ctx.n, ctx.now, hot):
                if video in found:
                    continue
                found.add(video)
                info = ctx.catalogue.info.get(video)
                topic = info.topic if info and info.topic else "all videos"
                out.append(Candidate(video, self.name, f"{why} {topic}"))
        return out


class FreshSource:
    name = "fresh"

    def fetch(self, ctx: FeedContext) -> list[Candidate]:
        return [Candidate(v, self.name, "new") for v in ctx.catalogue.fresh(ctx.n, ctx.now, ctx.fresh_window_s)]


class ColdStartSource:
    """A user with no vector yet, on a catalogue with nothing trending or new: the latest uploads."""

    name = "cold_start"

    def fetch(self, ctx: FeedContext) -> list[Candidate]:
        if not ctx.state.is_cold:
            return []
        latest = ctx.catalogue.fresh(ctx.n, ctx.now, float("inf"))
        return [Candidate(v, self.name, "recently uploaded") for v in latest]


class KnownVideoFilter:
    name = "known"

    def apply(self, ctx: FeedContext, cands: list[Candidate]) -> list[Candidate]:
        known = ctx.catalogue.vectors.row
        return [c for c in cands if c.video_id in known]


class SeenFilter:
    name = "seen"

    def apply(self, ctx: FeedContext, cands: list[Candidate]) -> list[Candidate]:
        seen = ctx.state.seen_set()
        return [c for c in cands if c.video_id not in seen]


class DislikedFilter:
    name = "disliked"

    def apply(self, ctx: FeedContext, cands: list[Candidate]) -> list[Candidate]:
        disliked = set(ctx.state.disliked)
        return [c for c in cands if c.video_id not in disliked]


class DuplicateFilter:
    """A re-upload (``duplicate_of`` set) is dropped in favour of its original."""

    name = "duplicate"

    def apply(self, ctx: FeedContext, cands: list[Candidate]) -> list[Candidate]:
        duplicates = ctx.catalogue.duplicates
        return [c for c in cands if c.video_id not in duplicates]


class LinearScorer:
    """Weighted sum of the candidate features (features.FEATURES); the weights are learned online
    by the ranker, starting from the ones in settings."""

    name = "scorer"

    def score(self, ctx: FeedContext, cands: list[Candidate]) -> list[Candidate]:
        if not cands:
            return cands
        total = candidate_features(ctx, [c.video_id for c in cands]) @ ctx.weights
        for c, value in zip(cands, total.tolist()):
            c.score = value
        return cands


class MmrSelector:
    """Maximal marginal relevance with a per-creator cap; fills in the reasons of similarity picks."""

    name = "mmr"

    def select(self, ctx: FeedContext, cands: list[Candidate]) -> list[Candidate]:
        pool = sorted(cands, key=lambda c: -c.score)[: max(ctx.k * 5, 50)]
        if not pool:
            return []
        vectors = ctx.catalogue.vectors.take([c.video_id for c in pool])
        scores = np.array([c.score for c in pool])
        redundancy = np.full(len(pool), -np.inf)  # max similarity to anything chosen so far (finite once any is)
        taken = np.zeros(len(pool))  # -inf where a candidate was taken or passed over
        chosen: list[Candidate] = []
        per_creator: dict[str, int] = {}
        lam = ctx.mmr_lambda if ctx.content else 1.0
        relevance = lam * scores
        for _ in range(len(pool)):
            if len(chosen) >= ctx.k:
                break
            values = (relevance - (1 - lam) * redundancy if chosen else relevance) + taken
            best = int(np.argmax(values))
            taken[best] = -np.inf
            cand = pool[best]
            creator = ctx.catalogue.info[cand.video_id].creator_id
            if per_creator.get(creator, 0) >= ctx.creator_cap:
                continue
            per_creator[creator] = per_creator.get(creator, 0) + 1
            if not cand.reason:
                near = _nearest_recent(ctx, vectors[best])
                cand.reason = f"similar to {near}" if near else "similar to what you watched"
            chosen.append(cand)
            redundancy = np.maximum(redundancy, vectors @ vectors[best])
        return chosen


SOURCES = (UserVectorSource("long_term", "long"), UserVectorSource("session", "short"), CoVisitSource(),
           SequentialSource(), SessionKNNSource(), TrendingSource(), FreshSource(), ColdStartSource())
FILTERS = (KnownVideoFilter(), SeenFilter(), DislikedFilter(), DuplicateFilter())
SCORER = LinearScorer()
SELECTOR = MmrSelector()


def run_feed(ctx: FeedContext, observe: Observer | None = None, sources: Sequence = SOURCES,
             filters: Sequence = FILTERS) -> list[Candidate]:
    def note(stage: str, started: float, n_in: int, n_out: int) -> None:
        if observe is not None:
            observe(stage, time.perf_counter() - started, n_in, n_out)

    merged: dict[str, Candidate] = {}
    for source in sources:
        t = time.perf_counter()
        found = source.fetch(ctx)
        for c in found:
            merged.setdefault(c.video_id, c)  # the first source to find an item names its reason
        note(source.name, t, 0, len(found))
    cands = list(merged.values())
    for f in filters:
        t = time.perf_counter()
        kept = f.apply(ctx, cands)
        note(f.name, t, len(cands), len(kept))
        cands = kept
    t = time.perf_counter()
    cands = SCORER.score(ctx, cands)
    note(SCORER.name, t, len(cands), len(cands))
    t = time.perf_counter()
    chosen = SELECTOR.select(ctx, cands)
    note(SELECTOR.name, t, len(cands), len(chosen))
    return chosen
