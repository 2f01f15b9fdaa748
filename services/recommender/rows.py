"""A partition's state as rows: what a flush stores (the local file, the changelog) and what a restore loads.

One type for both stores, so that a partition restored from either is the same state. ``covisit`` and
``transitions`` hold neighbour rows (video -> {neighbour: weight}): whole rows in a full snapshot (and in a
restored state), patches in a delta: only the pairs that changed since the last flush, a pair that a row
trimmed to its strongest neighbours dropped with weight 0. A flush then costs what changed (a few pairs per
event), not the rows it touched (up to 200 pairs each, most of them as they were), and a trimmed row is
stored exactly as it is in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import orjson

from services.recommender.core.user_state import Step

UserRow = tuple[str, str, bytes | None, bytes | None, bytes | None]
"""(user_id, small fields as JSON, long, short, negative vectors as float32 bytes): ``UserState.to_row``."""
UserSteps = tuple[str, list[Step]]
"""(user_id, the events folded into the user since the previous flush, as ``user_state.Step``): how a delta
stores a user (a restore applies them to the user's row), unless the user's whole row is in it."""
PopularityRow = tuple[str, float, float, float, float]
"""(video_id, decayed score, at, all-time total, hot score): ``Popularity.row``."""
CovisitRow = tuple[str, dict[str, float]]
"""(video_id, {neighbour: weight}): a co-visitation row, or a transitions row (the videos watched after it);
in a delta, a patch of it (weight 0: the pair is gone)."""


@dataclass
class Rows:
    users: list[UserRow] = field(default_factory=list)
    user_steps: list[UserSteps] = field(default_factory=list)
    """A delta's users, as steps to apply after their rows (``users`` holds a user whose row must be whole)."""
    popularity: list[PopularityRow] = field(default_factory=list)
    covisit: list[CovisitRow] = field(default_factory=list)
    transitions: list[CovisitRow] = field(default_factory=list)
    trends: list[CovisitRow] = field(default_factory=list)
    """(``topic:<name>`` or ``concept:<name>``, {bucket: views}): ``stats.TrendCounts``, stored like neighbour rows."""
    first_views: list[CovisitRow] = field(default_factory=list)
    """(video_id, {"views": its first day's views}): ``stats.FirstViews``, stored like neighbour rows."""
    ranker: tuple[bytes, int] | None = None
    """(weights as float64 bytes, updates), None: unchanged (a delta) or never learned."""
    next_offset: int | None = None
    """The first source offset not reflected (None: never consumed)."""
    model_version: str | None = None
    """The model the user vectors were built with (None: unknown)."""

    def __len__(self) -> int:
        return len(self.users) + len(self.user_steps) + len(self.popularity) + len(self.covisit) + \
            len(self.transitions) + len(self.trends) + len(self.first_views) + (self.ranker is not None)

    @property
    def entries(self) -> int:
        """What the rows hold, counted in users, users' steps, videos' popularity, neighbour pairs and the ranker."""
        return len(self.users) + sum(len(steps) for _, steps in self.user_steps) + len(self.popularity) + \
            (self.ranker is not None) + \
            sum(len(row) for _, row in self.covisit) + sum(len(row) for _, row in self.transitions) + \
            sum(len(row) for _, row in self.trends) + len(self.first_views)


NEIGHBOUR_TABLES = ("covisit", "transitions", "trends", "first_views")


class Folding:
    """Rows folded one flush after another (a full snapshot, then its deltas) in dictionaries, so that each
    flush costs what it holds, not the state so far: later values replace earlier ones by key, neighbour
    patches are applied pair by pair, a user's steps follow their row; :meth:`rows` gives the result."""

    def __init__(self) -> None:
        self.users: dict[str, UserRow] = {}
        self.steps: dict[str, list[Step]] = {}  # a user's steps after their row (or from an empty state)
        self.popularity: dict[str, PopularityRow] = {}
        self.tables: dict[str, dict[str, dict[str, float]]] = {name: {} for name in NEIGHBOUR_TABLES}
        self.ranker: tuple[bytes, int] | None = None
        self.next_offset: int | None = None
        self.model_version: str | None = None

    def add(self, later: Rows) -> None:
        for row in later.users:
            self.users[row[0]] = row
            self.steps.pop(row[0], None)  # the row holds them
        for user, steps in later.user_steps:
            self.steps.setdefault(user, []).extend(steps)
        self.popularity.update((row[0], row) for row in later.popularity)
        for name in NEIGHBOUR_TABLES:
            table = self.tables[name]
            for video, patch in getattr(later, name):
                row = table.get(video)
                if row is None:
                    table[video] = {b: w for b, w in patch.items() if w}
                else:
                    patch_row(row, patch)
        if later.ranker is not None:
            self.ranker = later.ranker
        if later.next_offset is not None:
            self.next_offset = later.next_offset
        if later.model_version is not None:
            self.model_version = later.model_version

    def rows(self) -> Rows:
        tables = {name: [(video, row) for video, row in table.items() if row] for name, table in self.tables.items()}
        return Rows(users=list(self.users.values()), user_steps=list(self.steps.items()),
                    popularity=list(self.popularity.values()), **tables, ranker=self.ranker,
                    next_offset=self.next_offset, model_version=self.model_version)


def patch_row(row: dict[str, float], patch: dict[str, float]) -> None:
    """``row`` with ``patch``'s pairs set, in place (weight 0: the pair is removed)."""
    for b, w in patch.items():
        if w:
            row[b] = w
        else:
            row.pop(b, None)


def encode_neighbours(row: dict[str, float]) -> bytes:
    """A neighbour row as compact JSON ({neighbour: weight}): its value in the local file and the changelog
    (orjson: a flush encodes every row that changed, and a restore or a replica decodes them all). A weight
    that is not finite raises ValueError: the flush fails rather than store what no restore could read."""
    if not all(map(math.isfinite, row.values())):
        raise ValueError("a neighbour weight that is not finite")
    return orjson.dumps(row)


def decode_neighbours(text: str | bytes) -> dict[str, float]:
    """:func:`encode_neighbours` back; raises ValueError for anything but an object of finite numbers >= 0."""
    row = orjson.loads(text)
    if not isinstance(row, dict):
        raise ValueError("a neighbour row that is not an object")
    out = {str(b): float(w) for b, w in row.items()}
    if not all(0.0 <= w < math.inf for w in out.values()):
        raise ValueError("a neighbour weight that is negative or not finite")
    return out
