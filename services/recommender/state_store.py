"""User state and the offsets it reflects, in one SQLite transaction per batch (one file per partition).

After a crash the consumer seeks to ``next_offset``: everything before it is in the state,
nothing after it is, so every event counts exactly once. The model version the user vectors were
built with is stored with them (``meta.model_version``): a recommender of another model drops them.

Schema 3 added the transitions table (what users watch next). Co-visitation and transitions pairs live in
clustered tables (``WITHOUT ROWID``: one b-tree, about a third less per pair written) where this build created
them; a delta writes only the pairs that changed (``rows.py``). A file of schema 2 is upgraded in place:
its transitions start empty and fill from the events applied after the upgrade; older files are refused. The
trends table (views per topic and concept in 10-minute buckets) is added to a file of schema 3 when this build
opens it (an empty table: the counts start from the events applied after), and so is the first-day views table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from services.recommender.core.user_state import UserState
from services.recommender.rows import Rows

SCHEMA_VERSION = 4
UPGRADABLE = {2, 3}  # versions whose files this build upgrades in place (it only adds tables and the hot column)
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, meta TEXT NOT NULL, long BLOB, short BLOB,
                                  negative BLOB);
CREATE TABLE IF NOT EXISTS popularity (video_id TEXT PRIMARY KEY, score REAL NOT NULL, at REAL NOT NULL,
                                       total REAL NOT NULL, hot REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS covisit (a TEXT NOT NULL, b TEXT NOT NULL, w REAL NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transitions (a TEXT NOT NULL, b TEXT NOT NULL, w REAL NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trends (a TEXT NOT NULL, b TEXT NOT NULL, w REAL NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS first_views (a TEXT NOT NULL, b TEXT NOT NULL, w REAL NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ranker (name TEXT PRIMARY KEY, weights BLOB NOT NULL, updates INTEGER NOT NULL);
"""


class StateSchemaError(RuntimeError):
    """A state file written by another version of the recommender."""


# Many rows in one statement, not one ``executemany`` step per row: the write runs in a thread beside the
# consumer, and every step of an executemany takes the GIL back from it (with a busy consumer, each wait is up
# to the 5 ms switch interval). Ids and numbers are read by SQLite itself from one JSON parameter (``json_each``;
# orjson writes the shortest repr that round-trips, and a unit test checks SQLite reads the same doubles back);
# user rows hold blobs, so they are bound, thousands of rows to an INSERT.
POPULARITY_FROM_JSON = ("INSERT OR REPLACE INTO popularity SELECT json_extract(value, '$[0]'), "
                        "json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), "
                        "json_extract(value, '$[4]') FROM json_each(?1)")  # [[video, score, at, total, hot], ...]
_PAIRS = "FROM json_each(?1) AS r, json_each(r.value, '$[1]') AS p"  # [[a, {b: w, ...}], ...]: one row per pair
PAIRS_DELETED_FROM_JSON = ("DELETE FROM {table} WHERE (a, b) IN (SELECT json_extract(r.value, '$[0]'), p.key "
                           + _PAIRS + " WHERE p.value = 0)")  # a patch's weight 0: the pair is gone (rows.py)
PAIRS_FROM_JSON = "INSERT OR REPLACE INTO {table} SELECT json_extract(r.value, '$[0]'), p.key, p.value " + _PAIRS + \
    " WHERE p.value IS NOT 0"  # IS NOT: a NaN weight (JSON null) fails the write, as a bound NaN did, not skipped
USERS_PER_STATEMENT = 2000  # user rows (5 values each) per INSERT: under SQLite's 32,766 bound values


def _json(rows: list) -> bytes:
    return orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY)


class PartitionStore:
    def __init__(self, folder: Path, topic: str, partition: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{topic}-{partition}.sqlite"
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
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
        if "hot" not in {r[1] for r in self.db.execute("PRAGMA table_info(popularity)")}:  # a version 2 or 3 file
            self.db.execute("ALTER TABLE popularity ADD COLUMN hot REAL NOT NULL DEFAULT 0")
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    def next_offset(self) -> int | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'next_offset'").fetchone()
        return None if row is None else int(row[0])

    def model_version(self) -> str | None:
        """The model version of the stored user vectors (None: never stored, or by a build that did not say)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'model_version'").fetchone()
        return None if row is None else str(row[0])

    def users(self) -> dict[str, UserState]:
        """The stored users, decoded (for tools and tests; a restore uses :meth:`load`)."""
        return {row[0]: UserState.from_row(*row[1:]) for row in self.load().users}

    def load(self) -> Rows:
        """Everything stored, with the offset it reflects."""
        db = self.db
        return Rows(users=list(db.execute("SELECT user_id, meta, long, short, negative FROM users")),
                    popularity=list(db.execute("SELECT video_id, score, at, total, hot FROM popularity")),
                    covisit=self._neighbour_rows("covisit"), transitions=self._neighbour_rows("transitions"),
                    trends=self._neighbour_rows("trends"), first_views=self._neighbour_rows("first_views"),
                    ranker=db.execute("SELECT weights, updates FROM ranker WHERE name = 'scorer'").fetchone(),
                    next_offset=self.next_offset(), model_version=self.model_version())

    def _neighbour_rows(self, table: str) -> list[tuple[str, dict[str, float]]]:
        rows: dict[str, dict[str, float]] = {}
        for a, b, w in self.db.execute(f"SELECT a, b, w FROM {table}"):  # the table names of this module
            rows.setdefault(a, {})[b] = w
        return list(rows.items())

    def commit(self, rows: Rows, full: bool = False) -> None:
        """Everything of one flush, or nothing; ``full``: ``rows`` are the whole state (what is not in them
        is deleted), else a delta, whose co-visitation and transitions rows are patches (``rows.py``): each
        pair is set, or deleted (weight 0)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if full:
                for table in ("users", "popularity", "covisit", "transitions", "trends", "first_views", "ranker"):
                    db.execute(f"DELETE FROM {table}")  # the table names of this module
            for start in range(0, len(rows.users), USERS_PER_STATEMENT):  # blobs: bound, not JSON
                chunk = rows.users[start:start + USERS_PER_STATEMENT]
                db.execute("INSERT OR REPLACE INTO users VALUES " + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                           [value for row in chunk for value in row])
            if rows.popularity:
                db.execute(POPULARITY_FROM_JSON, (_json(rows.popularity),))
            for table, neighbour_rows in (("covisit", rows.covisit), ("transitions", rows.transitions),
                                          ("trends", rows.trends), ("first_views", rows.first_views)):
                if neighbour_rows:
                    blob = _json(neighbour_rows)
                    db.execute(PAIRS_DELETED_FROM_JSON.format(table=table), (blob,))
                    db.execute(PAIRS_FROM_JSON.format(table=table), (blob,))
            if rows.ranker is not None:
                db.execute("INSERT OR REPLACE INTO ranker VALUES ('scorer', ?, ?)", rows.ranker)
            if rows.next_offset is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('next_offset', ?)", (rows.next_offset,))
            if rows.model_version is not None:  # a text value: the column's type is an affinity, not a constraint
                db.execute("INSERT OR REPLACE INTO meta VALUES ('model_version', ?)", (rows.model_version,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()
