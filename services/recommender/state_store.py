"""User state and the offsets it reflects, in one SQLite transaction per flush (one file per partition).

After a crash the consumer seeks to ``next_offset``: everything before it is in the state,
nothing after it is, so every event counts exactly once. The model version the user vectors were
built with is stored with them (``meta.model_version``): a recommender of another model drops them.

Schema 5: the file is a log of flushes, as the changelog is (``changelog.py``), not tables of rows. A flush
appends one record: its rows in the changelog's own encoding (``encode_rows``: a user row, a video's
popularity, a neighbour row's patch, the ranker), framed by their lengths. A full snapshot replaces the whole
log. A restore folds the snapshot and the deltas after it (``rows.Folding``). Once the entries written since
the snapshot outnumber both the snapshot's and ``min_entries``, :meth:`PartitionStore.wants_full` asks for the
next flush to be a full snapshot, so a restore reads at most about twice the state. Writing a delta is then one
append of bytes the changelog encoded already; schema 4 inserted each changed co-visitation and transitions
pair into a b-tree (about 12 a positive event, as much CPU as applying the event, on the cores the consumer
needs).

A file of schema 2, 3 or 4 (tables of rows) is read once and rewritten as a log in place; older files are
refused.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import time
from pathlib import Path

from services.recommender import metrics
from services.recommender.changelog import ChangelogError, decode_row, encode_rows
from services.recommender.rows import Folding, Rows

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5
UPGRADABLE = {2, 3, 4}  # tables of rows: read once (``_read_tables``) and rewritten as a log
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, snapshot INTEGER NOT NULL, entries INTEGER NOT NULL,
                                body BLOB NOT NULL);
"""
TABLES = ("users", "popularity", "covisit", "transitions", "trends", "first_views", "ranker")  # schema 2-4
CHUNK_BYTES = 64 << 20  # a full snapshot is appended in records of about this size (SQLite caps a blob at 1 GB)
PAGE_SIZE = 65536  # fewer WAL frames a flush: 22 against 38 ms of CPU for a 5.5 MB append, checkpoints included
_FRAME = struct.Struct(">II")  # a row's key and value lengths


class StateSchemaError(RuntimeError):
    """A state file written by another version of the recommender."""


def frame(records: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Encoded rows (``changelog.encode_rows``) as log bodies of about ``CHUNK_BYTES`` each (none: no rows)."""
    bodies, parts, size = [], [], 0
    for key, value in records:
        parts += (_FRAME.pack(len(key), len(value)), key, value)
        size += _FRAME.size + len(key) + len(value)
        if size >= CHUNK_BYTES:
            bodies.append(b"".join(parts))
            parts, size = [], 0
    if parts:
        bodies.append(b"".join(parts))
    return bodies


def unframe(body: bytes, into: Rows) -> None:
    """A log body's rows into ``into`` (ChangelogError: a body cut short or a row that does not decode)."""
    at, end = 0, len(body)
    while at < end:
        if at + _FRAME.size > end:
            raise ChangelogError("a state log record cut short")
        key_size, value_size = _FRAME.unpack_from(body, at)
        at += _FRAME.size
        if at + key_size + value_size > end:
            raise ChangelogError("a state log record cut short")
        key, value = body[at:at + key_size], body[at + key_size:at + key_size + value_size]
        at += key_size + value_size
        decode_row(key, value, into)


class PartitionStore:
    def __init__(self, folder: Path, topic: str, partition: int, min_entries: int = 2000) -> None:
        """``min_entries``: deltas of fewer entries than this since the snapshot never ask for a new one."""
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{topic}-{partition}.sqlite"
        self.min_entries = min_entries
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new file's: the log holds blobs of megabytes
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        found = SCHEMA_VERSION
        if tables:
            rows = dict(self.db.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
            # no version and no offset: a file created by this build and killed before it wrote either
            found = int(rows.get("schema_version", 1 if "next_offset" in rows else SCHEMA_VERSION))
            if found != SCHEMA_VERSION and found not in UPGRADABLE:
                self.db.close()
                raise StateSchemaError(
                    f"{self.path} holds recommender state of schema version {found}, this build reads version "
                    f"{SCHEMA_VERSION}. Move the file away (or delete it): the partition is then rebuilt from "
                    f"{topic} from the beginning, since its offsets are stored with the state.")
        self.db.executescript(SCHEMA)
        if found != SCHEMA_VERSION:
            self._upgrade(tables)
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        self.snapshot_entries, self.since_snapshot = 0, 0  # entries of the log's snapshot, and of the deltas after it
        for snapshot, entries in self.db.execute("SELECT snapshot, SUM(entries) FROM log GROUP BY snapshot"):
            if snapshot:
                self.snapshot_entries = entries
            else:
                self.since_snapshot = entries

    def _upgrade(self, tables: set[str]) -> None:
        """A file of tables of rows (schema 2-4) rewritten as a log of one full snapshot, in one transaction (a
        file whose log is written and whose tables are gone was upgraded already: a build before the version was
        written in that transaction could be killed in between)."""
        if "log" in tables and not tables & set(TABLES):
            return
        rows = _read_tables(self.db, tables)
        rows.next_offset, rows.model_version = self.next_offset(), self.model_version()
        self.commit(rows, full=True, drop=[t for t in TABLES if t in tables])

    def next_offset(self) -> int | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'next_offset'").fetchone()
        return None if row is None else int(row[0])

    def model_version(self) -> str | None:
        """The model version of the stored user vectors (None: never stored, or by a build that did not say)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'model_version'").fetchone()
        return None if row is None else str(row[0])

    def load(self) -> Rows:
        """Everything stored, with the offset it reflects (ChangelogError: a record that does not decode)."""
        folding = Folding()
        for (body,) in self.db.execute("SELECT body FROM log ORDER BY seq"):
            flush = Rows()
            unframe(body, flush)
            folding.add(flush)
        rows = folding.rows()
        rows.next_offset, rows.model_version = self.next_offset(), self.model_version()
        return rows

    def wants_full(self) -> bool:
        """Whether the deltas since the snapshot outnumber both it and ``min_entries`` (see the module note)."""
        return self.since_snapshot > max(self.min_entries, self.snapshot_entries)

    def commit(self, rows: Rows, full: bool = False, encoded: list[tuple[bytes, bytes]] | None = None,
               drop: list[str] = ()) -> None:
        """Everything of one flush, or nothing; ``full``: ``rows`` are the whole state (the log is replaced),
        else a delta, whose neighbour rows are patches (``rows.py``). ``encoded``: ``encode_rows(rows)``, when
        the changelog encoded them already; ``drop``: tables of an older schema, dropped in the same
        transaction."""
        bodies = frame(encode_rows(rows) if encoded is None else encoded)
        entries = rows.entries
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for table in drop:
                db.execute(f"DROP TABLE {table}")  # the table names of this module
            if full:
                db.execute("DELETE FROM log")
            for i, body in enumerate(bodies):  # a snapshot's entries counted once, on its first record
                db.execute("INSERT INTO log (snapshot, entries, body) VALUES (?, ?, ?)",
                           (int(full), 0 if i else entries, body))
            # in the same transaction as the tables an upgrade drops: a file is never left saying schema 4 with its
            # tables gone (reopened, it would be "upgraded" again from nothing, its offset kept)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            if rows.next_offset is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('next_offset', ?)", (rows.next_offset,))
            if rows.model_version is not None:  # a text value: the column's type is an affinity, not a constraint
                db.execute("INSERT OR REPLACE INTO meta VALUES ('model_version', ?)", (rows.model_version,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if full:
            self.snapshot_entries, self.since_snapshot = entries, 0
        else:
            self.since_snapshot += entries

    def close(self) -> None:
        self.db.close()


def open_store(folder: Path, topic: str, partition: int, min_entries: int = 2000) -> tuple[PartitionStore, Rows,
                                                                                     str | None]:
    """The partition's local file and what it holds; a file that SQLite cannot read or whose log does not
    decode is a cache gone bad: it is moved aside (``.unreadable-<time>``, with its WAL) and a fresh one
    opened, counted (``state_file_rejected``) and logged, and the third value says why (None: the file was read).
    A file of another schema still raises StateSchemaError: that one is the operator's to move."""
    try:
        store = PartitionStore(folder, topic, partition, min_entries)
    except sqlite3.DatabaseError as exc:
        why = f"{type(exc).__name__}: {exc}"
    else:
        try:
            return store, store.load(), None
        except (ChangelogError, sqlite3.DatabaseError) as exc:
            store.close()
            why = f"{type(exc).__name__}: {exc}"
    path = folder / f"{topic}-{partition}.sqlite"
    aside = path.with_name(f"{path.name}.unreadable-{time.time_ns()}")
    for suffix in ("", "-wal", "-shm"):
        found = path.with_name(path.name + suffix)
        if found.exists():
            found.rename(aside.with_name(aside.name + suffix))
    metrics.state_file_rejected.inc()
    log.error("%s[%d]: the local state file cannot be read (%s); moved to %s and a fresh one opened: the partition "
              "is restored from the changelog, or its events are read again", topic, partition, why, aside.name)
    return PartitionStore(folder, topic, partition, min_entries), Rows(), f"{why} (moved to {aside.name})"


def _read_tables(db: sqlite3.Connection, tables: set[str]) -> Rows:
    """The rows of a file of schema 2-4 (what it lacks, empty: transitions before 3, hot scores before 4)."""
    def pairs(table: str) -> list[tuple[str, dict[str, float]]]:
        out: dict[str, dict[str, float]] = {}
        if table in tables:
            for a, b, w in db.execute(f"SELECT a, b, w FROM {table}"):  # the table names of this module
                out.setdefault(a, {})[b] = w
        return list(out.items())

    hot = "hot" in {r[1] for r in db.execute("PRAGMA table_info(popularity)")}
    ranker = db.execute("SELECT weights, updates FROM ranker WHERE name = 'scorer'").fetchone() \
        if "ranker" in tables else None
    return Rows(users=list(db.execute("SELECT user_id, meta, long, short, negative FROM users"))
                if "users" in tables else [],
                popularity=list(db.execute(f"SELECT video_id, score, at, total, {'hot' if hot else '0.0'} "
                                           "FROM popularity")) if "popularity" in tables else [],
                covisit=pairs("covisit"), transitions=pairs("transitions"), trends=pairs("trends"),
                first_views=pairs("first_views"), ranker=None if ranker is None else (ranker[0], ranker[1]))
