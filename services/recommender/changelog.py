"""The state changelog: each flush of a partition's state as records of a compacted topic, and reading it back.

Kafka Streams' changelog design without transactions (Tansu 0.6 cannot give aiokafka a producer id, and
hands aborted records to read_committed readers): partition ``p`` of ``watch.events`` has its state in
partition ``p`` of ``<group>.changelog``. One record per row, keyed by the row (``u/<user>``, ``s/<user>``
(a user's steps since the previous flush, ``user_state.Step``: how a delta stores a user, whose whole row only
a snapshot holds), ``p/<video>``,
``c/<video>``, ``t/<video>`` (transitions), ``h/<topic or concept>`` (trends), ``f/<video>`` (first-day views),
``r``), so compaction on Apache
Kafka keeps the newest of each; each record carries its flush's id in a header. A flush ends with a commit marker (key ``m``) that says how many records the flush
has, the source offset its state reflects, the consumer-group generation it was written in, and where the
partition's latest full snapshot starts. A reader applies a flush only when its marker arrives with every
record of it, so a restore never mixes two flushes; a flush its writer did not finish (killed half way)
is never applied; a marker of an older generation than one already seen (a fenced-off zombie) neither.

A delta's co-visitation and transitions records are patches of their rows (the pairs that changed, ``rows.py``),
so a flush costs what changed. Patches of one row share its key, so a restore needs every record since the
latest snapshot: ``min.compaction.lag.ms`` (an hour, ``shared/runtime/admin.py``) keeps the cleaner off them,
and a snapshot comes long before that under any load that writes much; a flush that lost a record to the
cleaner anyway no longer matches its marker's count, and the partition is rebuilt from ``watch.events``
(never restored with a record missing).

The embedded broker never compacts, so restore time is bounded here: once the entries (a user, a video's
popularity, a neighbour pair) written since the last full snapshot outnumber both the snapshot's and
``snapshot_min_entries``, the next flush is a full snapshot. A restore finds the latest marker near the
end, reads from that snapshot's first record to the end, and so reads at most about twice the partition's
state.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.recommender.core.user_state import Step
from services.recommender.rows import Folding, Rows, decode_neighbours, encode_neighbours

MARKER = b"m"
_NEIGHBOUR_KINDS = {b"c": "covisit", b"t": "transitions", b"h": "trends", b"f": "first_views"}  # key prefix: Rows field
RANKER = b"r"
FLUSH_HEADER = "flush"


class ChangelogError(ValueError):
    """A changelog record that cannot be decoded, or a flush whose marker does not match its records."""

    record: Any = None  # the record it was found at, once known (to dead-letter it)


class Marker(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flush: str = Field(min_length=1, max_length=200)
    records: int = Field(ge=0)
    next_offset: int = Field(ge=0)
    snapshot: bool
    base: int = Field(ge=-1)
    """Changelog offset of the first record of the latest full snapshot (-1: none yet)."""
    snapshot_records: int = Field(0, ge=0)
    """Records of that snapshot (what a restore reads at least)."""
    snapshot_entries: int = Field(0, ge=0)
    """Entries of that snapshot (``Rows.entries``)."""
    entries: int = Field(0, ge=0)
    """Entries written since that snapshot began, this flush's included (what decides the next snapshot)."""
    generation: int = Field(ge=-1)
    model_version: str | None = None


# ---------------------------------------------------------------- encoding


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()


def _unb64(text: Any) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ChangelogError("a vector is not base64 text")
    return base64.b64decode(text, validate=True)


_LENGTH = struct.Struct(">I")
_NONE = 0xFFFFFFFF


def encode_user(meta: str, *vectors: bytes | None) -> bytes:
    """A user row as bytes: the small fields' JSON, then each vector's raw float32 bytes (or none), each
    after its length (big-endian 32 bits; all ones: no vector). Vectors are most of a row: no base64."""
    parts = [_LENGTH.pack(len(raw := meta.encode())), raw]
    for vector in vectors:
        parts += [_LENGTH.pack(_NONE)] if vector is None else [_LENGTH.pack(len(vector)), vector]
    return b"".join(parts)


def decode_user(value: bytes) -> tuple[str, bytes | None, bytes | None, bytes | None]:
    fields: list = []
    at = 0
    for i in range(4):
        (size,) = _LENGTH.unpack_from(value, at)
        at += _LENGTH.size
        if size == _NONE and i > 0:
            fields.append(None)
            continue
        if at + size > len(value):
            raise ChangelogError("a user row cut short")
        fields.append(value[at:at + size])
        at += size
    if at != len(value):
        raise ChangelogError("a user row with bytes after its fields")
    return fields[0].decode(), fields[1], fields[2], fields[3]


def encode_rows(rows: Rows) -> list[tuple[bytes, bytes]]:
    """(key, value) per row of a flush, without its marker."""
    out = []
    for user_id, meta, long, short, negative in rows.users:
        out.append((b"u/" + user_id.encode(), encode_user(meta, long, short, negative)))
    for user_id, steps in rows.user_steps:
        out.append((b"s/" + user_id.encode(), orjson.dumps(list(map(tuple, steps)))))
    for video, *entry in rows.popularity:
        out.append((b"p/" + video.encode(), orjson.dumps(entry)))  # a row per video that changed: orjson
    for kind, neighbour_rows in ((b"c/", rows.covisit), (b"t/", rows.transitions), (b"h/", rows.trends),
                                 (b"f/", rows.first_views)):
        for video, row in neighbour_rows:
            out.append((kind + video.encode(), encode_neighbours(row)))
    if rows.ranker is not None:
        out.append((RANKER, json.dumps({"w": _b64(rows.ranker[0]), "n": rows.ranker[1]}).encode()))
    return out


def decode_row(key: bytes | None, value: bytes | None, into: Rows, users: bool = True) -> None:
    """One data record into ``into`` (users are skipped unless ``users``); raises ChangelogError."""
    try:
        if key is None or value is None:
            raise ChangelogError("a changelog record without key or value")
        kind, _, name = key.partition(b"/")
        if kind == b"u":
            if users:
                meta, long, short, negative = decode_user(value)
                if not meta.startswith("{"):
                    raise ChangelogError("a user row whose fields are not an object")
                into.users.append((name.decode(), meta, long, short, negative))
        elif kind == b"s":
            if users:
                into.user_steps.append((name.decode(), decode_steps(value)))
        elif kind == b"p":
            entry = [float(x) for x in orjson.loads(value)]
            if len(entry) == 3:  # written by a build without hot scores
                entry.append(0.0)
            score, at, total, hot = entry
            into.popularity.append((name.decode(), score, at, total, hot))
        elif kind in _NEIGHBOUR_KINDS:
            table = getattr(into, _NEIGHBOUR_KINDS[kind])
            table.append((name.decode(), decode_neighbours(value)))
        elif key == RANKER:
            v = json.loads(value)
            into.ranker = (_unb64(v["w"]), int(v["n"]))
        else:
            raise ChangelogError(f"unknown changelog key {key[:40]!r}")
    except ChangelogError as exc:
        raise ChangelogError(f"undecodable changelog record {(key or b'')[:40]!r}: {exc}") from exc
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError, struct.error) as exc:
        raise ChangelogError(f"undecodable changelog record {(key or b'')[:40]!r}: {type(exc).__name__}: {exc}") \
            from exc


def decode_steps(value: bytes) -> list[Step]:
    """A user's steps (``user_state.Step`` as JSON arrays) back; raises ChangelogError (or orjson's ValueError)."""
    steps = orjson.loads(value)
    if not isinstance(steps, list) or not all(isinstance(s, list) and len(s) == len(Step._fields) for s in steps):
        raise ChangelogError("user steps that are not arrays of their fields")
    out = []
    for event_id, ts, session_id, video_id, weight, seen, vector in steps:
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (ts, weight))
        if not (numbers and isinstance(event_id, str) and isinstance(video_id, str)
                and isinstance(session_id, str | None) and isinstance(seen, bool) and isinstance(vector, bool)):
            raise ChangelogError("a user step with fields of the wrong type")
        step = Step(event_id, float(ts), session_id, video_id, float(weight), seen, vector)
        if not (math.isfinite(step.ts) and math.isfinite(step.weight)):
            raise ChangelogError("a user step with a time or weight that is not finite")
        out.append(step)
    return out


def decode_marker(value: bytes | None) -> Marker:
    try:
        return Marker.model_validate_json(value or b"")
    except ValidationError as exc:
        raise ChangelogError(f"undecodable commit marker: {exc.errors()[0]['msg']}") from exc


def flush_id(record: Any) -> str | None:
    for name, raw in record.headers or ():
        if name == FLUSH_HEADER:
            return raw.decode("utf-8", "replace")
    return None


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Held:
    """A flush as its writer kept it: ``rows`` (users left out); for a full snapshot also ``delta``, what
    changed since the writer's flush ``after`` of the same partition (the snapshot is that flush's state with
    ``delta`` applied, so a reader whose latest flush was ``after`` applies ``delta`` alone)."""

    rows: Rows
    delta: Rows | None = None
    after: str | None = None

    @property
    def entries(self) -> int:
        return self.rows.entries + (self.delta.entries if self.delta is not None else 0)


class WrittenFlushes:
    """The rows of the flushes this process wrote lately, by flush id: its own statistics reader takes them
    instead of decoding the same records back (``Assembler``). What no reader takes is dropped oldest first
    past ``max_entries`` (a reader that finds a flush gone decodes it as any other)."""

    def __init__(self, max_entries: int = 2_000_000) -> None:
        self.max_entries = max_entries
        self.held: OrderedDict[str, Held] = OrderedDict()
        self.entries = 0

    def keep(self, flush: str, rows: Rows, delta: Rows | None = None, after: str | None = None) -> None:
        """Before the flush's first record is written (a reader may see it at once)."""
        held = Held(replace(rows, users=[], user_steps=[]),
                    None if delta is None or after is None else replace(delta, users=[], user_steps=[]), after)
        self.held[flush] = held
        self.entries += held.entries
        while self.entries > self.max_entries and len(self.held) > 1:
            self.entries -= self.held.popitem(last=False)[1].entries

    def take(self, flush: str, last: str | None) -> tuple[Rows, bool] | None:
        """(the rows, whether they are a delta) for a reader whose latest flush of the partition was ``last``."""
        held = self.held.pop(flush, None)
        if held is None:
            return None
        self.entries -= held.entries
        as_delta = held.delta is not None and last is not None and held.after == last
        return replace(held.delta if as_delta else held.rows), as_delta  # a copy: the reader sets the position


DECODED, HELD, HELD_DELTA = 0, 1, 2  # how an Assembler gets a pending flush's rows


@dataclass
class Assembler:
    """Changelog records of one partition in, complete flushes out (see the module note). ``users``: keep
    user rows (a restore) or skip them (the other replicas' statistics)."""

    users: bool = True
    generation: int = -1
    pending: dict[str, tuple[Rows, int, int]] = field(default_factory=dict)  # flush -> (rows, records, HELD_...)
    written: WrittenFlushes | None = None
    """Flushes this process wrote (``ChangelogLog.written``): their records are counted, not decoded again,
    and the rows come from there (only without ``users``: what is held there has none)."""
    last: str | None = None  # the latest flush completed
    gap: bool = False
    """A flush was rejected since the latest full snapshot: the rows read lack it, so no snapshot is taken as
    a delta until a whole one has been read (``reject``)."""

    def reject(self) -> None:
        """The pending flush failed (a record of it did not decode, or some went missing): drop it."""
        self.pending.clear()
        self.gap = True

    def feed(self, record: Any) -> tuple[Marker, Rows] | None:
        """One record; returns (marker, the flush's rows) when it completes a flush. Raises ChangelogError."""
        if record.key == MARKER:
            marker = decode_marker(record.value)
            rows, count, held = self.pending.pop(marker.flush, None) or self._begin(marker.flush)
            self.pending.clear()  # a flush left without its marker never completes
            if marker.generation < self.generation:
                return None  # written by an owner the group had already replaced
            if count != marker.records:
                raise ChangelogError(f"flush {marker.flush} says {marker.records} records, {count} were read")
            self.generation, self.last = marker.generation, marker.flush
            rows.next_offset, rows.model_version = marker.next_offset, marker.model_version
            if held == HELD_DELTA and marker.snapshot:  # the snapshot as what changed since the latest flush
                marker = marker.model_copy(update={"snapshot": False})
            elif marker.snapshot:
                self.gap = False
            return marker, rows
        flush = flush_id(record)
        if flush is None:
            raise ChangelogError(f"changelog record at offset {record.offset} names no flush")
        rows, count, held = self.pending.get(flush) or self._begin(flush)
        if held == DECODED:
            decode_row(record.key, record.value, rows, self.users)
        self.pending[flush] = (rows, count + 1, held)
        return None

    def _begin(self, flush: str) -> tuple[Rows, int, int]:
        """A flush's first record (or its marker, for a flush of none): the rows as this process wrote them
        when it holds them (taken out: the flush completes once), else empty rows to decode into."""
        if self.written is None or self.users:
            return Rows(), 0, DECODED
        taken = self.written.take(flush, None if self.gap else self.last)
        if taken is None:
            return Rows(), 0, DECODED
        rows, as_delta = taken
        return rows, 0, HELD_DELTA if as_delta else HELD


@dataclass
class Restored:
    """A partition's state from its changelog: the rows and the last marker."""

    rows: Rows | None = None
    marker: Marker | None = None


def restore(records: Iterable[Any]) -> Restored:
    """Fold the complete flushes of ``records`` (read from a snapshot's first record to the end)."""
    out = Restored()
    folding: Folding | None = None
    assembler = Assembler()
    for record in records:
        try:
            done = assembler.feed(record)
        except ChangelogError as exc:
            exc.record = record
            raise
        if done is None:
            continue
        marker, rows = done
        if marker.snapshot or folding is None:  # deltas before any snapshot (from the log's start) patch empty rows
            folding = Folding()
        folding.add(rows)
        out.marker = marker
    if folding is not None:
        out.rows = folding.rows()
    return out


def last_marker(records: Iterable[Any]) -> Marker | None:
    """The last decodable marker among ``records`` (the end of the log, when looking for where to start)."""
    found = None
    for record in records:
        if record.key == MARKER:
            try:
                found = decode_marker(record.value)
            except ChangelogError:
                continue
    return found
