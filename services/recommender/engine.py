"""The recommender's state in memory (partitions handed to it as rows), and the feed entry points."""

from __future__ import annotations

import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import repeat

import numpy as np

from services.recommender import metrics
from services.recommender.core.catalogue import Catalogue
from services.recommender.core.features import (
    FEATURES,
    candidate_features,
    sample_negatives,
)
from services.recommender.core.feed import Candidate, FeedContext, Observer, run_feed
from services.recommender.core.global_stats import GlobalStats
from services.recommender.core.ranker import Ranker, blend
from services.recommender.core.sessions import SessionIndex
from services.recommender.core.signals import signal_weight
from services.recommender.core.stats import CoVisitation, FirstViews, Popularity, Transitions, TrendCounts
from services.recommender.core.trends import keys_of
from services.recommender.core.user_state import Applied, Step, UserState, apply_step, step_of
from services.recommender.reach_index import ReachIndex
from services.recommender.rows import Rows
from services.recommender.state_store import PartitionStore, open_store
from shared.events import WatchEvent
from shared.settings import RecommenderSettings

log = logging.getLogger(__name__)
QueryVectors = Callable[[list[str]], list[np.ndarray | None]]
"""Text queries to unit vectors in the search space, None for a query with no content word
(``shared.search.QueryEncoder.vectors``)."""


@dataclass(frozen=True)
class Snapshot:
    """What a flush stores of one partition (``rows``, taken between batches), and how to undo taking it."""
    partition: int
    rows: Rows
    full: bool
    restore: Callable[[], None]
    store: PartitionStore | None = None
    delta: Rows | None = None
    """For a full snapshot: what changed since the previous snapshot taken, as a delta holds it (users left out)."""

    @property
    def next_offset(self) -> int:
        return self.rows.next_offset

    def write(self, encoded: list[tuple[bytes, bytes]] | None = None) -> None:
        """Into the partition's local file (``encoded``: the rows as the changelog encoded them, if it did)."""
        if self.store is not None:
            self.store.commit(self.rows, self.full, encoded)


@dataclass
class PartitionState:
    users: dict[str, UserState]
    popularity: Popularity
    covisit: CoVisitation
    ranker: Ranker
    next_offset: int | None = None  # the first offset not yet in this state (None: never consumed)
    store: PartitionStore | None = None  # the local file (None: held in memory only)
    ranker_dirty: bool = False
    full_requested: bool = False  # a video's vector changed: stored steps must not be applied with the new one
    dirty_users: set[str] = field(default_factory=set)  # users whose whole row the next flush stores
    user_steps: dict[str, list[Step]] = field(default_factory=dict)  # the rest: their events since the last flush
    dirty_videos: set[str] = field(default_factory=set)
    dirty_rows: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # co-visit pairs changed
    transitions: Transitions = field(default_factory=Transitions)  # what users watched next
    dirty_next: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # transitions pairs
    trends: TrendCounts = field(default_factory=TrendCounts)  # views per topic and concept, in time buckets
    dirty_trends: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    first_views: FirstViews = field(default_factory=FirstViews)  # each video's views on its first day
    dirty_first: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    sessions: SessionIndex | None = None  # derived from ``users`` (never stored)

    def __post_init__(self) -> None:
        if self.sessions is None:
            self.sessions = SessionIndex(self.users)


MAX_STEPS = 100
"""A user with more steps than this since the last flush is stored as their whole row (about 24 KB at 2048
dimensions; a step is about 100 bytes): a row is then smaller, and no record grows past the broker's limit."""


def _patches(table: CoVisitation, changed: dict[str, set[str]]) -> list[tuple[str, dict[str, float]]]:
    """The changed pairs of each row, with their weights now (0: no longer in the row)."""
    counts, empty = table.counts, {}
    return [(a, dict(zip(bs, map(counts.get(a, empty).get, bs, repeat(0.0))))) for a, bs in changed.items()]


class Recommender:
    def __init__(self, settings: RecommenderSettings, catalogue: Catalogue, topic: str,
                 queries: QueryVectors | None = None, clock: Callable[[], float] = time.time,
                 shared_stats: bool = False) -> None:
        """``queries``: the text query path (None: /v1/search answers empty). ``shared_stats``: feeds rank
        with ``self.shared``, the statistics of all partitions, which the changelog reader keeps
        (``stats_reader.py``); else with those of the partitions held here, merged as events are applied."""
        self.settings = settings
        self.clock = clock  # the wall clock: no event's time moves a shared clock past it
        self.catalogue = catalogue
        self.topic = topic
        self.queries = queries
        self._dropped_logged = False
        self.partitions: dict[int, PartitionState] = {}
        self.user_partition: dict[str, int] = {}
        self.prior = np.array([settings.scorer_weights[f] for f in FEATURES], float)
        self.shared = GlobalStats(settings.popularity_half_life_s, self.prior, settings.hot_half_life_s) if shared_stats else None
        self.own_popularity = Popularity(settings.popularity_half_life_s, settings.hot_half_life_s)
        self.own_covisit = CoVisitation()
        self.own_transitions = Transitions()
        self.own_trends = TrendCounts()
        self.own_first_views = FirstViews()
        self._weights: np.ndarray | None = None
        self.reach: ReachIndex | None = None  # users' vectors and bars for creator insights (None: off)

    @property
    def popularity(self) -> Popularity:
        return self.shared.popularity if self.shared is not None else self.own_popularity

    @property
    def covisit(self) -> CoVisitation:
        return self.shared.covisit if self.shared is not None else self.own_covisit

    @property
    def transitions(self) -> Transitions:
        return self.shared.transitions if self.shared is not None else self.own_transitions

    @property
    def trends(self) -> TrendCounts:
        return self.shared.trends if self.shared is not None else self.own_trends

    @property
    def first_views(self) -> FirstViews:
        return self.shared.first_views if self.shared is not None else self.own_first_views

    # ---------------------------------------------------------------- partitions

    def assign(self, partition: int) -> int | None:
        """Load a partition's state from its local file; returns the offset to resume from (None: never
        consumed). A partition already held resumes from its state in memory, which may be ahead of the disk.
        A file that cannot be read is moved aside and counted (``open_store``), and the partition starts empty:
        without a changelog (``partitions.py`` restores from one) its events must be read again from the start."""
        if partition in self.partitions:
            return self.partitions[partition].next_offset
        store, rows, _ = open_store(self.settings.state_dir, self.topic, partition, self.settings.snapshot_min_entries)
        self.install(partition, rows, store)
        return self.partitions[partition].next_offset

    def install(self, partition: int, rows: Rows, store: PartitionStore | None = None) -> PartitionState:
        """Hold ``partition`` with the state in ``rows`` (restored from wherever); ``store``: its local file."""
        pop = Popularity(self.settings.popularity_half_life_s, self.settings.hot_half_life_s)
        wall = self.clock()
        for video, score, at, total, hot in rows.popularity:  # a row stored by an unbounded build is brought back
            pop.load(video, score, min(at, wall), total, hot)
        cov, nxt, trends, first = CoVisitation(), Transitions(), TrendCounts(), FirstViews()
        for table, neighbour_rows in ((cov, rows.covisit), (nxt, rows.transitions), (trends, rows.trends),
                                      (first, rows.first_views)):
            for video, row in neighbour_rows:
                table.counts[video] = dict(row)
        ranker = Ranker.from_bytes(*rows.ranker) if rows.ranker else Ranker(self.prior.copy())
        if len(ranker.weights) != len(self.prior):  # written by a build with other features: learn afresh
            ranker = Ranker(self.prior.copy())
        users, dropped = self._users(rows, partition)
        state = PartitionState(users, pop, cov, ranker, rows.next_offset, store, transitions=nxt, trends=trends,
                               first_views=first, dirty_users=dropped)
        old = self.partitions.pop(partition, None)
        if old is not None:
            for user in old.users:
                self.user_partition.pop(user, None)
            if old.store is not None and old.store is not store:
                old.store.close()
        self.partitions[partition] = state
        for user in state.users:
            self.user_partition[user] = partition
        if self.reach is not None:
            self.reach.mark(state.users)
        self._rebuild_global()
        return state

    def _users(self, rows: Rows, partition: int) -> tuple[dict[str, UserState], set[str]]:
        """The users ``rows`` hold, their steps applied, and those whose vectors were dropped (another model's)."""
        users = {uid: UserState.from_row(meta, lo, sh, ne) for uid, meta, lo, sh, ne in rows.users}
        dropped = self._drop_foreign_vectors(users, rows.model_version, partition)
        other_model = bool(dropped) or self._other_version(rows.model_version)
        self.replay(users, rows.user_steps, vectors=not other_model)
        if other_model:  # their steps stay stored under the old model: the next flush replaces them with whole rows,
            dropped |= {user for user, _ in rows.user_steps}  # or a later restore would give them the new vectors
        return users, dropped

    def users_of(self, rows: Rows) -> dict[str, UserState]:
        """The users ``rows`` hold, as :meth:`install` would hold them (for tools and tests)."""
        return self._users(rows, -1)[0]

    def replay(self, users: dict[str, UserState], user_steps: list[tuple[str, list[Step]]],
               vectors: bool = True) -> None:
        """Apply stored steps to their users (in place; a user without a row starts empty), with the videos'
        vectors the catalogue holds now: the same state as when they were applied, unless a video the step
        found is gone from the catalogue since (counted). ``vectors`` False: the steps were applied with another
        model's vectors, so they move no vector (as that model's vectors are dropped, see
        ``_drop_foreign_vectors``)."""
        s, vector_of, missing = self.settings, self.catalogue.vector, 0
        for user_id, steps in user_steps:
            user = users.get(user_id)
            if user is None:
                user = users[user_id] = UserState()
            for step in steps:
                vector = vector_of(step.video_id) if step.vector and vectors else None
                missing += step.vector and vectors and vector is None
                apply_step(user, step, vector, long_half_life=s.long_half_life, short_half_life=s.short_half_life,
                           session_gap_s=s.session_gap_s, seen_limit=s.seen_limit, covisit_window=s.covisit_window)
        if missing:
            metrics.replayed_steps_without_vector.inc(missing)

    def _other_version(self, stored_version: str | None) -> bool:
        """Whether state stored under ``stored_version`` was built with another model than the catalogue's."""
        version = self.catalogue.model_version
        return version is not None and stored_version is not None and stored_version != version

    def _drop_foreign_vectors(self, users: dict[str, UserState], stored_version: str | None,
                              partition: int) -> set[str]:
        """User vectors written for another model (another version, or another size than the catalogue's)
        live in another space: they are dropped here and rebuilt from later watch events; the users'
        seen and disliked videos stay. Returns those users: the next commit stores their whole rows, without the
        vectors, together with the current version (their steps stored after those rows apply in the new space)."""
        dim, version = self.catalogue.store.dim, self.catalogue.model_version
        other_version = self._other_version(stored_version)
        dropped = set()
        for user_id, user in users.items():
            vectors = [v for v in (user.long, user.short, user.negative) if v is not None]
            if vectors and (other_version or any(len(v) != dim for v in vectors)):
                user.long = user.short = user.negative = None
                dropped.add(user_id)
        if dropped:
            metrics.user_vectors_dropped.inc(len(dropped))
            if not self._dropped_logged:  # once per process; the counter has every later one
                self._dropped_logged = True
                why = f"model {stored_version}" if other_version else "vectors of another size"
                log.warning("%s[%d]: dropped the vectors of %d users, built for another model (%s; the catalogue holds "
                            "%s, %d dimensions); they are rebuilt from later watch events (counted from now on in "
                            "clipstream_recommender_user_vectors_dropped_total)", self.topic, partition, len(dropped),
                            why, version or "any version", dim)
        return dropped

    def revoke(self, partition: int) -> None:
        state = self.detach(partition)
        if state is not None and state.store is not None:
            state.store.close()

    def detach(self, partition: int) -> PartitionState | None:
        """Stop holding ``partition``; returns its state (its local file still open), to be attached again if
        the partition comes back unchanged, or closed."""
        state = self.partitions.pop(partition, None)
        if state is None:
            return None
        for user in state.users:
            self.user_partition.pop(user, None)
        self._rebuild_global()
        return state

    def attach(self, partition: int, state: PartitionState) -> None:
        """Hold ``partition`` again with a state it had (see :meth:`detach`)."""
        self.partitions[partition] = state
        for user in state.users:
            self.user_partition[user] = partition
        self._rebuild_global()

    def _rebuild_global(self) -> None:
        """The statistics of the partitions held here, merged (only without ``shared`` statistics); with one
        partition they are that partition's own (the same values, updated once per event instead of twice)."""
        self._weights = None
        if self.shared is not None:
            return
        if len(self.partitions) == 1:
            [st] = self.partitions.values()
            self.own_popularity, self.own_covisit, self.own_transitions = st.popularity, st.covisit, st.transitions
            self.own_trends, self.own_first_views = st.trends, st.first_views
            return
        self.own_popularity = Popularity(self.settings.popularity_half_life_s, self.settings.hot_half_life_s)
        self.own_covisit = CoVisitation()
        self.own_transitions = Transitions()
        self.own_trends = TrendCounts()
        self.own_first_views = FirstViews()
        for p in sorted(self.partitions):
            st = self.partitions[p]
            self.own_popularity.merge(st.popularity)
            self.own_covisit.merge(st.covisit)
            self.own_transitions.merge(st.transitions)
            self.own_trends.merge(st.trends)
            self.own_first_views.merge(st.first_views)

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
        weight = signal_weight(event)
        if vector is not None and weight > 0 and not user.has_event(event.event_id):
            self._learn(st, event.user_id, user, event)
        recent_before = list(user.recent_positive) if weight > 0 else None  # for the session index
        step = step_of(event, vector, weight)
        applied = apply_step(user, step, vector, long_half_life=s.long_half_life, short_half_life=s.short_half_life,
                             session_gap_s=s.session_gap_s, seen_limit=s.seen_limit, covisit_window=s.covisit_window)
        if applied.duplicate:
            return applied
        steps = st.user_steps.get(event.user_id)
        if steps is None:
            st.user_steps[event.user_id] = [step]
        else:
            steps.append(step)
        if self.reach is not None:
            self.reach.pending.add(event.user_id)
        if applied.weight > 0:
            ts = self.event_time(event)
            st.popularity.add(event.video_id, applied.weight, ts)
            st.dirty_videos.add(event.video_id)
            st.covisit.add(event.video_id, applied.positive_before, dirty=st.dirty_rows)
            st.transitions.add(event.video_id, applied.positive_before, dirty=st.dirty_next)
            st.sessions.update(event.user_id, recent_before, user.recent_positive)
            info = self.catalogue.info.get(event.video_id)
            keys = keys_of(info.topic, info.concepts) if info is not None else []
            st.trends.add(keys, ts, dirty=st.dirty_trends)
            if info is not None:
                st.first_views.add(event.video_id, ts, info.created_at, st.dirty_first)
            if self.shared is None and self.own_covisit is not st.covisit:  # one process: the merged view follows
                self.own_popularity.add(event.video_id, applied.weight, ts)
                self.own_covisit.add(event.video_id, applied.positive_before)
                self.own_transitions.add(event.video_id, applied.positive_before)
                self.own_trends.add(keys, ts)
                if info is not None:
                    self.own_first_views.add(event.video_id, ts, info.created_at)
        return applied

    # ---------------------------------------------------------------- learning to rank

    def _learn(self, st: PartitionState, user_id: str, user: UserState, event: WatchEvent) -> None:
        """One online step of the ranker on a positive event (the caller checks that it is), before it is
        applied: the watched video against videos the user had not seen. Sampled by event id (deterministic, so
        a replay after a crash learns the same steps); features from this partition's own
        statistics, so a partition's ranker depends on nothing outside it."""
        s = self.settings
        if not user.recent_positive or s.learn_fraction <= 0:
            return
        draw = zlib.crc32(event.event_id.encode())
        if draw / 2**32 >= s.learn_fraction:
            return
        ctx = FeedContext(user_id, user, 0, self.event_time(event), self.catalogue, st.popularity, st.covisit, self.prior,
                          fresh_window_s=s.fresh_window_s, transitions=st.transitions, content=s.content_vectors,
                          sessions=st.sessions)
        negatives = sample_negatives(ctx, event.video_id, s.learn_negatives, draw, s.learn_candidate_share)
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
        if self.shared is not None:
            return self.shared.weights()
        if self._weights is None:
            self._weights = blend((self.partitions[p].ranker for p in sorted(self.partitions)), self.prior)
        return self._weights

    def position(self, partition: int) -> int | None:
        """The first offset of ``partition`` not yet folded into the state held here."""
        st = self.partitions.get(partition)
        return None if st is None else st.next_offset

    def advance(self, partition: int, next_offset: int) -> None:
        self.partitions[partition].next_offset = next_offset

    def snapshot(self, partition: int, next_offset: int | None = None, full: bool = False) -> Snapshot:
        """What changed in a partition (``full``: all of it), now, with the offset it reflects (default: its
        position), as rows; the writes may then run in a thread. The changes are no longer pending: a write
        that fails calls ``restore``, so a later flush stores them. A delta's co-visitation and transitions
        rows are patches: only the pairs that changed, a dropped pair with weight 0 (``rows.py``); its users are
        the steps applied to them since the last flush (``user_steps``), a few hundred bytes an event where
        their vectors are 24 KB at 2048 dimensions."""
        st = self.partitions[partition]
        if next_offset is None:
            next_offset = st.next_offset
        if next_offset is None:
            raise ValueError(f"partition {partition} has no position to store")
        st.next_offset = next_offset
        users_, videos, stepped = set(st.dirty_users), set(st.dirty_videos), st.user_steps
        st.user_steps = {}
        pairs, next_pairs, trend_pairs, first_pairs = st.dirty_rows, st.dirty_next, st.dirty_trends, st.dirty_first
        st.dirty_rows, st.dirty_next, st.dirty_trends = defaultdict(set), defaultdict(set), defaultdict(set)
        st.dirty_first = defaultdict(set)
        patches = Rows(popularity=[(v, *st.popularity.row(v)) for v in videos],
                       covisit=_patches(st.covisit, pairs), transitions=_patches(st.transitions, next_pairs),
                       trends=_patches(st.trends, trend_pairs), first_views=_patches(st.first_views, first_pairs),
                       ranker=(st.ranker.to_bytes(), st.ranker.updates) if st.ranker_dirty or full else None,
                       next_offset=next_offset, model_version=self.catalogue.model_version)
        if full:
            covisit, transitions, trends, first = ([(a, dict(row)) for a, row in table.counts.items() if row]
                                                   for table in (st.covisit, st.transitions, st.trends, st.first_views))
            rows = replace(patches, users=[(u, *user.to_row()) for u, user in st.users.items()],
                           popularity=[(v, *st.popularity.row(v)) for v in st.popularity.scores],
                           covisit=covisit, transitions=transitions, trends=trends, first_views=first)
        else:  # a user's whole row when it must be (``dirty_users``), else the steps since the last flush
            users_ |= {u for u, steps in stepped.items() if len(steps) > MAX_STEPS}  # cheaper, and a bounded record
            rows = replace(patches, users=[(u, *st.users[u].to_row()) for u in users_],
                           user_steps=[(u, steps) for u, steps in stepped.items() if u not in users_])
        was_dirty, was_requested = st.ranker_dirty, st.full_requested and full
        st.ranker_dirty = False
        if full:
            st.full_requested = False
        st.dirty_users.clear()
        st.dirty_videos.clear()

        def restore() -> None:  # the write failed: mark the changes dirty again so a later flush stores them
            st.dirty_users |= users_
            st.dirty_users.update(stepped)  # their steps are not stored: the next flush stores their whole rows
            st.dirty_videos |= videos
            for dirty, failed in ((st.dirty_rows, pairs), (st.dirty_next, next_pairs), (st.dirty_trends, trend_pairs),
                                  (st.dirty_first, first_pairs)):
                for a, bs in failed.items():
                    dirty[a] |= bs
            st.ranker_dirty = st.ranker_dirty or was_dirty
            st.full_requested = st.full_requested or was_requested

        return Snapshot(partition, rows, full, restore, st.store, patches if full else None)

    def wants_full(self, partition: int) -> bool:
        """Whether the partition's next flush must be a full snapshot for its own sake: its local file's log
        asks for one, or a video's vector changed since the steps it stores were applied (:meth:`vector_changed`)."""
        st = self.partitions[partition]
        return st.full_requested or (st.store is not None and st.store.wants_full())

    def vector_changed(self) -> None:
        """A video's vector was replaced by different values: the steps stored since each partition's last full
        snapshot were applied with the old one, so every partition's next flush is a full snapshot (whole rows)."""
        for st in self.partitions.values():
            st.full_requested = True

    def commit(self, partition: int, next_offset: int | None = None) -> None:
        """Store what changed in the partition's local file now (a full snapshot when :meth:`wants_full`)."""
        self.snapshot(partition, next_offset, full=self.wants_full(partition)).write()

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
        partition = self.user_partition.get(user_id)
        sessions = self.partitions[partition].sessions if partition is not None else None
        ctx = FeedContext(user_id, self.user(user_id), k, now or self.clock(), self.catalogue,
                          self.popularity, self.covisit, self.scorer_weights(), s.candidates_per_source, s.fresh_window_s,
                          s.mmr_lambda, s.creator_cap, transitions=self.transitions, content=s.content_vectors,
                          sessions=sessions)
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
