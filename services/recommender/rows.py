"""A partition's state as rows: what a flush stores (the local file, the changelog) and what a restore loads.

One type for both stores, so that a partition restored from either is the same state. ``covisit`` and
``transitions`` hold whole neighbour rows (video -> {neighbour: weight}): a row trimmed to its strongest
neighbours is stored as it is in memory, never as a union with pairs it dropped.
"""

from __future__ import annotations

import orjson
from dataclasses import dataclass, field

UserRow = tuple[str, str, bytes | None, bytes | None, bytes | None]
"""(user_id, small fields as JSON, long, short, negative vectors as float32 bytes): ``UserState.to_row``."""
PopularityRow = tuple[str, float, float, float]
"""(video_id, decayed score, at, all-time total)."""
CovisitRow = tuple[str, dict[str, float]]
"""(video_id, {neighbour: weight}): a co-visitation row, or a transitions row (the videos watched after it)."""


@dataclass
class Rows:
    users: list[UserRow] = field(default_factory=list)
    popularity: list[PopularityRow] = field(default_factory=list)
    covisit: list[CovisitRow] = field(default_factory=list)
    transitions: list[CovisitRow] = field(default_factory=list)
    ranker: tuple[bytes, int] | None = None
    """(weights as float64 bytes, updates), None: unchanged (a delta) or never learned."""
    next_offset: int | None = None
    """The first source offset not reflected (None: never consumed)."""
    model_version: str | None = None
    """The model the user vectors were built with (None: unknown)."""

    def __len__(self) -> int:
        return len(self.users) + len(self.popularity) + len(self.covisit) + len(self.transitions) + \
            (self.ranker is not None)

    def fold(self, later: Rows) -> None:
        """Apply ``later`` (a delta) on top of these rows, in place: later values replace earlier ones by key."""
        for mine, theirs in ((self.users, later.users), (self.popularity, later.popularity),
                             (self.covisit, later.covisit), (self.transitions, later.transitions)):
            if theirs:
                merged = {row[0]: row for row in mine}
                merged.update((row[0], row) for row in theirs)
                mine[:] = merged.values()
        if later.ranker is not None:
            self.ranker = later.ranker
        if later.next_offset is not None:
            self.next_offset = later.next_offset
        if later.model_version is not None:
            self.model_version = later.model_version


def encode_neighbours(row: dict[str, float]) -> bytes:
    """A neighbour row as compact JSON ({neighbour: weight}): its value in the local file and the changelog
    (orjson: a flush encodes every row that changed, and a restore or a replica decodes them all)."""
    return orjson.dumps(row)


def decode_neighbours(text: str | bytes) -> dict[str, float]:
    """:func:`encode_neighbours` back; raises ValueError for anything but an object of numbers."""
    row = orjson.loads(text)
    if not isinstance(row, dict):
        raise ValueError("a neighbour row that is not an object")
    return {str(b): float(w) for b, w in row.items()}
