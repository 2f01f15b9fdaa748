"""The recommender's state in memory, its per-partition persistence, and the feed entry points."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from services.recommender import metrics
from services.recommender.core.catalogue import Catalogue
from services.recommender.core.features import FEATURES, candidate_features, sample_negatives
from services.recommender.core.feed import Candidate, FeedContext, Observer, run_feed
from services.recommender.core.ranker import Ranker, blend
from services.recommender.core.stats import CoVisitation, Popularity
from services.recommender.core.signals import signal_weight
from services.recommender.core.user_state import Applied, UserState, apply_event
from services.recommender.state_store import PartitionStore
from shared.events import WatchEvent
from shared.settings import RecommenderSettings

log = logging.getLogger(__name__)
QueryVectors = Callable[[list[str]], list[np.ndarray | None]]
"""Text queries to unit vectors in the search space, None for a query with no content word
(``shared.search.QueryEncoder.vectors``)."""


@dataclass(frozen=True)
class Snapshot:
    partition: int
    next_offset: int
    write: Callable[[], None]
    restore: Callable[[], None]


@dataclass
class PartitionState:
    store: PartitionStore
    users: dict[str, UserState]
    popularity: Popularity
    covisit: CoVisitation
    ranker: Ranker
    next_offset: int | None = None  # the first offset not yet in this state (None: never consumed)
    ranker_dirty: bool = False
    dirty_users: set[str] = field(default_factory=set)
    dirty_videos: set[str] = field(default_factory=set)
    dirty_pairs: set[tuple[str, str]] = field(default_factory=set)


class Recommender:
    def __init__(self, settings: RecommenderSettings, catalogue: Catalogue, topic: str,
                 queries: QueryVectors | None = None, clock: Callable[[], float] = time.time) -> None:
        """``queries``: the text query path (None: /v1/search answers empty)."""
        self.settings = settings
        self.clock = clock  # the wall clock: no event's time moves a shared clock past it
        self.catalogue = catalogue
        self.topic = topic
        self.queries = queries
        self._dropped_logged = False
        self.partitions: dict[int, PartitionState] = {}
        self.user_partition: dict[str, int] = {}
        self.popularity = Popularity(settings.popularity_half_life_s)
        self.covisit = CoVisitation()
        self.prior = np.array([settings.scorer_weights[f] for f in FEATURES], float)
        self._weights: np.ndarray | None = None

    # ---------------------------------------------------------------- partitions

    def assign(self, partition: int) -> int | None:
        """Load a partition's state; returns the offset to resume from (None: never consumed). A
        partition already held resumes from its state in memory, which may be ahead of the disk."""
        if partition in self.partitions:
            return self.partitions[partition].next_offset
        store = PartitionStore(self.settings.state_dir, self.topic, partition)
        pop = Popularity(self.settings.popularity_half_life_s)
        wall = self.clock()
        for video, score, at, total in store.popularity():  # a row stored by an unbounded build is brought back
            pop.load(video, score, min(at, wall), total)
        cov = CoVisitation()
        for a, b, w in store.covisits():
            cov.counts[a][b] = w
        stored = store.ranker()
        ranker = Ranker.from_bytes(*stored) if stored else Ranker(self.prior.copy())
        if len(ranker.weights) != len(self.prior):  # written by a build with other features: learn afresh
            ranker = Ranker(self.prior.copy())
        state = PartitionState(store, store.users(), pop, cov, ranker, store.next_offset())
        self._drop_foreign_vectors(state, store.model_version())
        self.partitions[partition] = state
        for user in state.users:
            self.user_partition[user] = partition
        self._rebuild_global()
        return state.next_offset

    def _drop_foreign_vectors(self, state: PartitionState, stored_version: str | None) -> None:
        """User vectors written for another model (another version, or another size than the catalogue's)
        live in another space: they are dropped here and rebuilt from later watch events; the users'
        seen and disliked videos stay. The users are marked dirty, so the next commit stores them
        without the vectors, together with the current version."""
        dim, version = self.catalogue.store.dim, self.catalogue.model_version
        other_version = version is not None and stored_version is not None and stored_version != version
        dropped = 0
        for user_id, user in state.users.items():
            vectors = [v for v in (user.long, user.short, user.negative) if v is not None]
            if vectors and (other_version or any(len(v) != dim for v in vectors)):
                user.long = user.short = user.negative = None
                state.dirty_users.add(user_id)
                dropped += 1
        if dropped:
            metrics.user_vectors_dropped.inc(dropped)
            if not self._dropped_logged:  # once per process; the counter has every later one
                self._dropped_logged = True
                why = f"model {stored_version}" if other_version else "vectors of another size"
                log.warning("%s: dropped the vectors of %d users, built for another model (%s; the catalogue holds "
                            "%s, %d dimensions); they are rebuilt from later watch events (counted from now on in "
                            "clipstream_recommender_user_vectors_dropped_total)", state.store.path, dropped, why,
                            version or "any version", dim)

    def revoke(self, partition: int) -> None:
        state = self.partitions.pop(partition, None)
        if state is None:
            return
        for user in state.users:
            self.user_partition.pop(user, None)
        state.store.close()
        self._rebuild_global()

    def _rebuild_global(self) -> None:
        self._weights = None
        self.popularity = Popularity(self.settings.popularity_half_life_s)
        self.covisit = CoVisitation()
        for st in self.partitions.values():
            self.popularity.merge(st.popularity)
            for a, row in st.covisit.counts.items():
                for b, w in row.items():
                    self.covisit.counts[a][b] = self.covisit.counts[a].get(b, 0.0) + w

    # ---------------------------------------------------------------- events

    def apply(self, event: WatchEvent, partition: int) -> Applied:
        if partition not in self.partitions:  # never start a partition empty: load what is stored for it
            self.assign(partition)
        st = self.partitions[partition]
        user = st.users.get(event.user_id)
        if user is None:
            user = st.users[event.user_id] = UserState()
            self.user_partition[event.user_id] = partition
        vector = self.catalogue.vector(event.video_id)  # None: not in the catalogue (yet)
        s = self.settings
        if vector is not None and event.event_id not in user.event_ids:
            self._learn(st, event.user_id, user, event)
        applied = apply_event(user, event, vector, long_half_life=s.long_half_life, short_half_life=s.short_half_life,
                              session_gap_s=s.session_gap_s, seen_limit=s.seen_limit, covisit_window=s.covisit_window)
        if applied.duplicate:
            return applied
        st.dirty_users.add(event.user_id)
        if applied.weight > 0:
            ts = self.event_time(event)
            st.popularity.add(event.video_id, applied.weight, ts)
            self.popularity.add(event.video_id, applied.weight, ts)
            st.dirty_videos.add(event.video_id)
            for a, b, _ in st.covisit.add(event.video_id, applied.positive_before):
                st.dirty_pairs.add((a, b))
            self.covisit.add(event.video_id, applied.positive_before)
        return applied

    # ---------------------------------------------------------------- learning to rank

    def _learn(self, st: PartitionState, user_id: str, user: UserState, event: WatchEvent) -> None:
        """One online step of the ranker on a positive event, before the event is applied: the
        watched video against videos the user had not seen. Sampled by event id (deterministic, so
        a replay after a crash learns the same steps); features from this partition's own
        statistics, so a partition's ranker depends on nothing outside it."""
        s = self.settings
        if not user.recent_positive or s.learn_fraction <= 0:
            return
        draw = zlib.crc32(event.event_id.encode())
        if draw / 2**32 >= s.learn_fraction or signal_weight(event) <= 0:
            return
        ctx = FeedContext(user_id, user, 0, self.event_time(event), self.catalogue, st.popularity, st.covisit, self.prior,
                          fresh_window_s=s.fresh_window_s)
        negatives = sample_negatives(ctx, event.video_id, s.learn_negatives, np.random.default_rng(draw))
        if not negatives:
            return
        x = candidate_features(ctx, [event.video_id, *negatives])
        st.ranker.learn(x[0], x[1:], self.prior, s.learn_rate, s.learn_l2)
        st.ranker_dirty = True
        self._weights = None

    def event_time(self, event: WatchEvent) -> float:
        """An event's time as the shared statistics see it: never past the wall clock (the events'
        own check allows a few minutes of skew; this keeps even those from moving the clocks)."""
        return min(event.ts.timestamp(), self.clock())

    def scorer_weights(self) -> np.ndarray:
        if self._weights is None:
            self._weights = blend((st.ranker for st in self.partitions.values()), self.prior)
        return self._weights

    def position(self, partition: int) -> int | None:
        """The first offset of ``partition`` not yet folded into the state held here."""
        st = self.partitions.get(partition)
        return None if st is None else st.next_offset

    def advance(self, partition: int, next_offset: int) -> None:
        self.partitions[partition].next_offset = next_offset

    def snapshot(self, partition: int, next_offset: int | None = None) -> Snapshot:
        """Serialise what changed in a partition, now, with the offset it reflects (default: its
        position); the write may then run in a thread."""
        st = self.partitions[partition]
        if next_offset is None:
            next_offset = st.next_offset
        if next_offset is None:
            raise ValueError(f"partition {partition} has no position to store")
        st.next_offset = next_offset
        dirty = (set(st.dirty_users), set(st.dirty_videos), set(st.dirty_pairs))
        users = [(u, *st.users[u].to_row()) for u in dirty[0]]
        pops = [(v, *st.popularity.scores[v], st.popularity.totals.get(v, 0.0)) for v in dirty[1]]
        pairs = [(a, b, st.covisit.counts[a][b]) for a, b in dirty[2] if b in st.covisit.counts.get(a, {})]
        ranker = (st.ranker.to_bytes(), st.ranker.updates) if st.ranker_dirty else None
        st.ranker_dirty = False
        st.dirty_users.clear()
        st.dirty_videos.clear()
        st.dirty_pairs.clear()
        store = st.store

        def restore() -> None:  # the write failed: mark the changes dirty again so a later flush stores them
            st.dirty_users |= dirty[0]
            st.dirty_videos |= dirty[1]
            st.dirty_pairs |= dirty[2]
            st.ranker_dirty = st.ranker_dirty or ranker is not None

        version = self.catalogue.model_version
        return Snapshot(partition, next_offset, lambda: store.commit(next_offset, users, pops, pairs, ranker, version),
                        restore)

    def commit(self, partition: int, next_offset: int | None = None) -> None:
        self.snapshot(partition, next_offset).write()

    def close(self) -> None:
        for p in list(self.partitions):
            self.revoke(p)

    # ---------------------------------------------------------------- reads

    def user(self, user_id: str) -> UserState:
        partition = self.user_partition.get(user_id)
        if partition is None:
            return UserState()  # unknown user: an explicit cold start
        return self.partitions[partition].users.get(user_id, UserState())

    def feed(self, user_id: str, k: int, observe: Observer | None = None, now: float | None = None) -> list[Candidate]:
        s = self.settings
        ctx = FeedContext(user_id, self.user(user_id), k, now or self.clock(), self.catalogue,
                          self.popularity, self.covisit, self.scorer_weights(), s.candidates_per_source, s.fresh_window_s,
                          s.mmr_lambda, s.creator_cap)
        return run_feed(ctx, observe)

    def similar(self, video_id: str, k: int) -> list[tuple[str, float]] | None:
        vector = self.catalogue.vector(video_id)
        if vector is None:
            return None
        return [(v, s) for v, s in self.catalogue.search(vector, k + 1, [video_id]) if v != video_id][:k]

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """A text query in the search space (``shared/search.py``), nearest search vectors from the
        catalogue's search store; a query with no content word matches nothing."""
        if self.queries is None:
            return []
        [vector] = self.queries([query])
        if vector is None:
            return []
        return self.catalogue.text_search(vector, k)
