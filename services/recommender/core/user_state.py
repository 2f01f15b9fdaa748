"""One user's state: long-term, session and negative vectors, seen and disliked items.

Vectors are exponentially decayed averages of the videos' vectors, weighted by the signal.
Decay is counted in events (a half-life of N events), so replays and live traffic agree, and
out-of-order timestamps cannot make weights grow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import orjson

from services.recommender.core.signals import marks_seen, signal_weight
from shared.events import WatchEvent


SET_FROM = 64  # list length from which a state keeps a set of it for membership (see UserState)
_SETS = {"event_ids": "_event_set", "seen": "_seen_set"}  # a list of UserState -> the field holding its set


def _decay(half_life: float) -> float:
    return 0.5 ** (1.0 / half_life)


def _scaled(vector: np.ndarray, weight: float) -> np.ndarray:
    return (weight * vector).astype(np.float32, copy=False)


def _mix(current: np.ndarray | None, update: np.ndarray, keep: float) -> np.ndarray:
    """keep * current + update in float32, in place (the same bits as the expression, no temporaries); a
    new vector is a copy of ``update``, so one update can be mixed into several vectors."""
    if current is None:
        return update.copy()
    current *= keep
    current += update
    return current


@dataclass
class UserState:
    long: np.ndarray | None = None
    short: np.ndarray | None = None
    negative: np.ndarray | None = None
    session_id: str | None = None
    last_ts: float = 0.0
    events: int = 0
    seen: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)
    recent_positive: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    hours: list[int] = field(default_factory=lambda: [0] * 24)  # events by hour of the day (UTC): when the user is active
    # ``event_ids`` and ``seen`` as sets, once they are long (SET_FROM), kept in step by apply_event: a heavy user
    # has up to 1,000 ids and 2,000 seen videos, and a list scan per event cost more than the rest of the event;
    # a short list is scanned, as fast, and most users never pay a set's memory. Only apply_event changes the
    # lists (a copy by dataclasses.replace shares them and starts without sets: do not apply events to both)
    _event_set: set[str] | None = field(default=None, init=False, repr=False, compare=False)
    _seen_set: set[str] | None = field(default=None, init=False, repr=False, compare=False)

    def _members(self, name: str) -> set[str] | None:
        """The set kept of list ``name`` ("event_ids" or "seen"), built once it is long; None while it is short."""
        cache = _SETS[name]
        members = getattr(self, cache)
        if members is None and len(getattr(self, name)) >= SET_FROM:
            members = set(getattr(self, name))
            setattr(self, cache, members)
        return members

    def has_event(self, event_id: str) -> bool:
        members = self._members("event_ids")
        return event_id in (self.event_ids if members is None else members)

    def has_seen(self, video: str) -> bool:
        members = self._members("seen")
        return video in (self.seen if members is None else members)

    def seen_set(self) -> set[str]:
        """The videos in ``seen``, to read, never to change (for a long list, the state's own set)."""
        members = self._members("seen")
        return set(self.seen) if members is None else members

    @property
    def is_cold(self) -> bool:
        return self.long is None and self.short is None

    def to_row(self) -> tuple[str, bytes | None, bytes | None, bytes | None]:
        """(small fields as JSON, long, short, negative as raw float32 bytes): exact and cheap to store."""
        meta = {"session_id": self.session_id, "last_ts": self.last_ts, "events": self.events, "seen": self.seen,
                "disliked": self.disliked, "recent_positive": self.recent_positive, "event_ids": self.event_ids,
                "hours": self.hours}
        raw = lambda v: None if v is None else np.asarray(v, np.float32).tobytes()
        # orjson writes what json.dumps(separators=(",", ":")) writes for these fields (ASCII ids, one float)
        # in a tenth of the time: every flush writes the row of every user with a new event
        return orjson.dumps(meta).decode(), raw(self.long), raw(self.short), raw(self.negative)

    @classmethod
    def from_row(cls, meta: str, long: bytes | None, short: bytes | None, negative: bytes | None) -> UserState:
        arr = lambda b: None if b is None else np.frombuffer(b, np.float32).copy()
        m = orjson.loads(meta)
        return cls(arr(long), arr(short), arr(negative), m["session_id"], m["last_ts"], m["events"], m["seen"],
                   m["disliked"], m["recent_positive"], m["event_ids"], m.get("hours") or [0] * 24)


def _push(items: list[str], members: set[str] | None, item: str, limit: int) -> None:
    """``item`` appended to ``items`` (not in it), the oldest dropped past ``limit``; ``members`` (None: no set yet)
    kept in step."""
    items.append(item)
    if members is not None:
        members.add(item)
    if len(items) > limit:
        if members is not None:
            members.difference_update(items[:-limit])
        del items[:-limit]


class Step(NamedTuple):
    """What folding one event into a user's state needs of it: a flush stores a user's steps since the last
    flush, not the vectors they moved (24 KB a user at 2048 dimensions), and a restore applies them again
    (``apply_step``: the same float32 operations, so the same bits, given the same videos' vectors)."""

    event_id: str
    ts: float
    session_id: str | None
    video_id: str
    weight: float  # signal_weight
    seen: bool  # marks_seen
    vector: bool  # the video's vector was in the catalogue when the event was applied


def step_of(event: WatchEvent, vector: np.ndarray | None, weight: float | None = None) -> Step:
    return Step(event.event_id, event.ts.timestamp(), event.session_id, event.video_id,
                signal_weight(event) if weight is None else weight, marks_seen(event), vector is not None)


@dataclass(frozen=True)
class Applied:
    duplicate: bool
    weight: float
    positive_before: tuple[str, ...] = ()
    video_known: bool = True


def apply_event(state: UserState, event: WatchEvent, vector: np.ndarray | None, *, long_half_life: float,
                short_half_life: float, session_gap_s: float, seen_limit: int, covisit_window: int,
                dedupe_window: int = 1000, weight: float | None = None) -> Applied:
    """Fold one event into ``state`` (in place). A repeated event_id changes nothing. ``weight``: the event's
    ``signal_weight``, when the caller has it already."""
    return apply_step(state, step_of(event, vector, weight), vector, long_half_life=long_half_life,
                      short_half_life=short_half_life, session_gap_s=session_gap_s, seen_limit=seen_limit,
                      covisit_window=covisit_window, dedupe_window=dedupe_window)


def apply_step(state: UserState, step: Step, vector: np.ndarray | None, *, long_half_life: float,
               short_half_life: float, session_gap_s: float, seen_limit: int, covisit_window: int,
               dedupe_window: int = 1000) -> Applied:
    """:func:`apply_event` of the event ``step`` was taken from."""
    if state.has_event(step.event_id):
        return Applied(duplicate=True, weight=0.0)
    _push(state.event_ids, state._event_set, step.event_id, dedupe_window)
    ts = step.ts
    new_session = (step.session_id is not None and step.session_id != state.session_id) or \
        (state.last_ts and ts - state.last_ts > session_gap_s)
    if new_session:
        state.short = None
    state.session_id = step.session_id or state.session_id
    state.last_ts = max(state.last_ts, ts)
    state.events += 1
    state.hours[int(ts // 3600) % 24] += 1
    weight = step.weight
    video = step.video_id
    if step.seen:
        if state.has_seen(video):
            state.seen.remove(video)  # and back at the end; its set keeps it
        _push(state.seen, state._seen_set, video, seen_limit)
    before = tuple(state.recent_positive[-covisit_window:])
    if vector is not None and weight > 0:
        update = _scaled(vector, weight)  # once for both vectors
        state.long = _mix(state.long, update, _decay(long_half_life))
        state.short = _mix(state.short, update, _decay(short_half_life))
    elif vector is not None and weight < 0:
        state.negative = _mix(state.negative, _scaled(vector, -weight), _decay(long_half_life))
    if weight > 0:
        state.recent_positive.append(video)
        del state.recent_positive[:-max(covisit_window, 20)]
    if weight <= -1.5 and video not in state.disliked:
        state.disliked.append(video)
    return Applied(duplicate=False, weight=weight, positive_before=before if weight > 0 else (),
                   video_known=vector is not None)
