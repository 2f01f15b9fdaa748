"""What the scorer knows about a (user, candidate) pair: one row of named features per candidate.

Every feature is computed from the state the stream keeps (user vectors, recent items,
popularity, co-visitation) and scaled to about [-1, 1] by a maximum that does not depend on which
candidates are asked about (the catalogue's most popular video, the user's strongest co-visit
vote), so one weight vector fits catalogues and traffic of any size, and a candidate scores the
same whether the ranker learns on it among a few sampled videos or the feed ranks it among
hundreds. The ranker (``ranker.py``) learns the weights online.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from services.recommender.core.row_arrays import CODES, summed

if TYPE_CHECKING:
    from services.recommender.core.feed import FeedContext

FEATURES = ("long", "short", "negative", "trending", "popularity", "covisit", "covisit_last", "fresh", "young",
            "covisit_recent", "topic", "sequential", "session_knn", "hot")
RECENT = 20  # recent positive items that vote for co-visited candidates
RECENCY = 0.9  # each older recent item's vote counts this much less
POP_DAMPING = 0.3  # co-visit counts divided by popularity**this: popular items co-occur with everything
LAST_FEW = 3  # recent positive items behind the short-window co-visit feature
NEXT_WEIGHTS = (1.0, 0.5, 0.25)  # the last positives' say in what comes next, most recent first
HOUR, YEAR_H = 3600.0, 365 * 24.0


def _over(x: np.ndarray, top: float) -> np.ndarray:
    return x / top if top > 0 else x


def over_strongest(votes: dict[str, float]) -> dict[str, float]:
    """Votes over the strongest one (so in [0, 1]); all of them as they are when none is above 0."""
    top = max(votes.values(), default=0.0)
    return {k: v / top for k, v in votes.items()} if top > 0 else votes


VoteArrays = tuple[np.ndarray, np.ndarray]
"""(codes, votes over the strongest) of one source, in the order its dictionary holds them (``row_arrays.CODES``)."""
CovisitArrays = tuple[np.ndarray, np.ndarray, np.ndarray]
"""The co-visit votes of both windows: (codes, RECENT's votes, LAST_FEW's votes), each over its strongest; the
shorter window's candidates are the first ``len`` of the codes (a candidate where it first appears, the most recent
item's row first)."""


def covisit_votes(ctx: FeedContext, recent: int = RECENT) -> dict[str, float]:
    """Candidates co-visited with the user's last ``recent`` (RECENT or LAST_FEW) positive items, each
    vote decayed by the item's age in the user's history and damped by the candidate's all-time
    popularity, over the strongest vote (so in [0, 1]); both windows in one pass, once per request."""
    if ctx.votes is None:
        codes, raw, early = covisit_arrays(ctx)
        ids = CODES.names(codes)
        ctx.votes = {RECENT: dict(zip(ids, raw.tolist())), LAST_FEW: dict(zip(ids, early.tolist()))}
    return ctx.votes[recent]


def covisit_arrays(ctx: FeedContext) -> CovisitArrays:
    """Both windows' votes (:data:`CovisitArrays`) from one sum over the rows' arrays (``row_arrays.py``): the same
    values, to the bit, and the same order, as adding the rows up pair by pair into a dictionary; once per request.
    A learning step reads them so, without a dictionary (:func:`candidate_features` looks its few videos up)."""
    if ctx.vote_arrays is None:
        parts, cut = [], None
        for age, item in enumerate(reversed(ctx.state.recent_positive[-RECENT:])):
            if age == LAST_FEW:
                cut = sum(len(codes) for codes, _ in parts)
            arrays = ctx.covisit.row_arrays(item)
            if arrays is not None:
                parts.append((arrays[0], arrays[1] * RECENCY ** age))
        codes, raw, early, n_early = summed(parts, cut)
        if len(codes):
            damp = np.maximum(ctx.popularity.totals_by_code(codes), 1.0) ** POP_DAMPING
            raw, early = raw / damp, early[:n_early] / damp[:n_early]
        ctx.vote_arrays = (codes, _strongest_one(raw), _strongest_one(early))
    return ctx.vote_arrays


def _strongest_one(votes: np.ndarray) -> np.ndarray:
    return _over(votes, float(votes.max())) if len(votes) else votes


def sequential_votes(ctx: FeedContext) -> dict[str, float]:
    """What users watched after the user's last positives (``NEXT_WEIGHTS``, the most recent first):
    the transitions rows summed with those weights, over the strongest vote (so in [0, 1]); once per
    request. Empty without transitions statistics. (Three rows: a loop over them is faster than reading
    them as arrays.)"""
    if ctx.next_votes is None:
        votes: dict[str, float] = {}
        rows = ctx.transitions.counts if ctx.transitions is not None else {}
        for w, item in zip(NEXT_WEIGHTS, reversed(ctx.state.recent_positive[-len(NEXT_WEIGHTS):])):
            get = votes.get
            for other, value in rows.get(item, {}).items():
                votes[other] = get(other, 0.0) + w * value
        ctx.next_votes = over_strongest(votes)
    return ctx.next_votes


def session_votes(ctx: FeedContext) -> dict[str, float]:
    """Session-kNN votes (``sessions.py``) for the user, over the strongest (so in [0, 1]); once per request.
    Empty without an index."""
    if ctx.session_votes is None:
        codes, votes = session_arrays(ctx)
        ctx.session_votes = dict(zip(CODES.names(codes), votes.tolist()))
    return ctx.session_votes


def session_arrays(ctx: FeedContext) -> VoteArrays:
    """:func:`session_votes` as arrays (:data:`VoteArrays`); once per request."""
    if ctx.knn_arrays is None:
        if ctx.sessions is not None:
            codes, sums = ctx.sessions.vote_arrays(ctx.user_id, ctx.state.recent_positive)
        else:
            codes, sums = np.zeros(0, np.int64), np.zeros(0)
        ctx.knn_arrays = (codes, _strongest_one(sums))
    return ctx.knn_arrays


def _looked_up(votes: Mapping[str, float], ids: list[str]) -> np.ndarray:
    """Each of ``ids``' vote (or weight) in a dictionary (0 without one)."""
    return np.fromiter(map(votes.get, ids, repeat(0.0)), float, len(ids))


def _places(codes: np.ndarray, ids: list[str]) -> np.ndarray:
    """Each of ``ids``' place in ``codes`` (distinct codes of ``row_arrays.CODES``), -1 where it is not there."""
    if not len(codes):
        return np.full(len(ids), -1)
    wanted = CODES.encode(ids)
    order = np.argsort(codes)
    at = order[np.minimum(np.searchsorted(codes, wanted, sorter=order), len(codes) - 1)]
    return np.where(codes[at] == wanted, at, -1)


def _taken(votes: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The votes at places ``at`` (0 at -1, or past the end: a shorter window's votes are a prefix)."""
    out = np.zeros(len(at))
    found = (at >= 0) & (at < len(votes))
    out[found] = votes[at[found]]
    return out


def _vote_columns(ctx: FeedContext, ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The covisit, covisit_recent and session_knn columns: from the dictionaries a feed's sources built, else
    (a learning step: a few videos) looked up in the arrays, with no dictionary of every candidate built."""
    if ctx.votes is not None:
        covisit, recent = _looked_up(ctx.votes[RECENT], ids), _looked_up(ctx.votes[LAST_FEW], ids)
    else:
        codes, raw, early = covisit_arrays(ctx)
        at = _places(codes, ids)
        covisit, recent = _taken(raw, at), _taken(early, at)
    if ctx.session_votes is not None:
        knn = _looked_up(ctx.session_votes, ids)
    else:
        codes, votes = session_arrays(ctx)
        knn = _taken(votes, _places(codes, ids))
    return covisit, recent, knn


def topic_share(ctx: FeedContext, rows: np.ndarray) -> np.ndarray:
    """For each candidate (its catalogue row), the share of the user's recent positive items in its topic."""
    cat = ctx.catalogue
    recent = [r for r in map(cat.vectors.row.get, ctx.state.recent_positive[-RECENT:]) if r is not None]
    if not recent:
        return np.zeros(len(rows))
    topics = cat.topics[recent]
    counts = np.bincount(topics[topics >= 0], minlength=len(cat.topic_codes) + 1).astype(float)
    mine = cat.topics[rows]
    return np.where(mine >= 0, counts[np.maximum(mine, 0)] / len(recent), 0.0)


def candidate_features(ctx: FeedContext, ids: list[str]) -> np.ndarray:
    """(len(ids), len(FEATURES)) for videos in the catalogue."""
    n = len(ids)
    if not n:
        return np.zeros((0, len(FEATURES)))
    rows = ctx.catalogue.vectors.rows(ids)
    vecs = ctx.catalogue.vectors.matrix[rows]
    st = ctx.state

    def sim(user_vec: np.ndarray | None) -> np.ndarray:
        if user_vec is None or not ctx.content:
            return np.zeros(n)
        return vecs @ (user_vec / (np.linalg.norm(user_vec) + 1e-12))

    pop = ctx.popularity
    trending, hot = pop.both_at(ids, ctx.now)
    trending = _over(trending, pop.top_score(ctx.now))
    hot = _over(hot, pop.top_score(ctx.now, hot=True))
    popularity = _over(np.log1p(pop.totals_of(ids)), float(np.log1p(pop.peak_total)))
    covisit, covisit_recent, session_knn = _vote_columns(ctx, ids)
    last_row = ctx.covisit.counts.get(st.recent_positive[-1], {}) if st.recent_positive else {}
    covisit_last = _over(_looked_up(last_row, ids), max(last_row.values(), default=0.0))
    age = ctx.now - ctx.catalogue.created[rows]
    fresh = np.clip(1.0 - age / ctx.fresh_window_s, 0.0, 1.0)
    young = np.clip(1.0 - np.log1p(np.maximum(age, 0.0) / HOUR) / np.log1p(YEAR_H), 0.0, 1.0)
    sequential = _looked_up(sequential_votes(ctx), ids)
    columns = (sim(st.long), sim(st.short), -sim(st.negative), trending, popularity, covisit, covisit_last, fresh,
               young, covisit_recent, topic_share(ctx, rows), sequential, session_knn, hot)
    return np.stack(columns, axis=1)


def retrieved(ctx: FeedContext) -> set[str]:
    """Every candidate the behavioural sources (co-visitation, transitions, session-kNN) find for the user (from
    the votes' arrays: no dictionary of votes built for it)."""
    found = set(CODES.names(np.concatenate((covisit_arrays(ctx)[0], session_arrays(ctx)[0]))))
    found.update(sequential_votes(ctx))
    return found


def retrieves(ctx: FeedContext, video: str) -> bool:
    """Whether ``video`` is in :func:`retrieved`, found row by row without counting any votes (most positives a
    learning step is offered are not, and then it learns nothing)."""
    recent = ctx.state.recent_positive
    counts = ctx.covisit.counts
    if any(video in counts.get(item, ()) for item in recent[-RECENT:]):
        return True
    if ctx.transitions is not None:
        rows = ctx.transitions.counts
        if any(video in rows.get(item, ()) for item in recent[-len(NEXT_WEIGHTS):]):
            return True
    if ctx.session_votes is not None:
        return video in ctx.session_votes
    return ctx.sessions is not None and ctx.sessions.votes_for(ctx.user_id, recent, video)


def sample_negatives(ctx: FeedContext, positive: str, n: int, seed: int, candidate_share: float = 0.0) -> list[str]:
    """Videos the user did not pick (never seen ones, never the positive), drawn uniformly from the
    catalogue; ``candidate_share`` of them instead drawn uniformly from what the behavioural sources
    retrieved (``retrieved``), and then only for a positive they retrieved too (else nothing: no step).

    The ranker orders retrieved candidates, so it learns best from them, but only on the retrieval's own
    terms: a positive the sources missed, set against candidates they found, teaches that being found is a
    bad sign. Measured (NDCG@10): on YOOCHOOSE's first 3 days, catalogue negatives 0.236, a third of them
    from the strongest candidates 0.098, half drawn from all candidates but for every positive 0.115, and
    all from the candidates for retrieved positives only 0.260; on MovieLens 100K's first 20k events,
    half from the co-visit candidates for every positive took 0.088 to 0.049."""
    n_pool = round(n * candidate_share)
    if n_pool and not retrieves(ctx, positive):
        return []
    rng = np.random.default_rng(seed)  # drawn from the seed here: a step that learns nothing costs nothing
    seen = ctx.state.seen_set()  # the state's own set: read, never changed here
    out: list[str] = []
    if n_pool:
        found = retrieved(ctx).difference(seen)
        found.discard(positive)
        pool = sorted(found.intersection(ctx.catalogue.info))  # sorted: the same draw anywhere
        out = [pool[i] for i in rng.choice(len(pool), min(n_pool, len(pool)), replace=False)] if pool else []
    ids = ctx.catalogue.ids
    drawn = [ids[i] for i in rng.integers(0, len(ids), n * 2)] if ids else []
    taken = set(out)
    taken.add(positive)
    return (out + list(dict.fromkeys(v for v in drawn if v not in seen and v not in taken)))[:n]
