"""User state and the offsets it reflects, in one SQLite transaction per batch (one file per partition).

After a crash the consumer seeks to ``next_offset``: everything before it is in the state,
nothing after it is, so every event counts exactly once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from services.recommender.core.user_state import UserState

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, meta TEXT NOT NULL, long BLOB, short BLOB,
                                  negative BLOB);
CREATE TABLE IF NOT EXISTS popularity (video_id TEXT PRIMARY KEY, score REAL NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS covisit (a TEXT NOT NULL, b TEXT NOT NULL, w REAL NOT NULL, PRIMARY KEY (a, b));
"""


class PartitionStore:
    def __init__(self, folder: Path, topic: str, partition: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{topic}-{partition}.sqlite"
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
        self.db.executescript(SCHEMA)

    def next_offset(self) -> int | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'next_offset'").fetchone()
        return None if row is None else int(row[0])

    def users(self) -> dict[str, UserState]:
        rows = self.db.execute("SELECT user_id, meta, long, short, negative FROM users")
        return {uid: UserState.from_row(meta, lo, sh, ne) for uid, meta, lo, sh, ne in rows}

    def popularity(self) -> list[tuple[str, float, float]]:
        return list(self.db.execute("SELECT video_id, score, at FROM popularity"))

    def covisits(self) -> list[tuple[str, str, float]]:
        return list(self.db.execute("SELECT a, b, w FROM covisit"))

    def commit(self, next_offset: int, users: Iterable[tuple], popularity: Iterable[tuple[str, float, float]],
               covisits: Iterable[tuple[str, str, float]]) -> None:
        """Everything of one batch, or nothing. ``users``: (user_id, *UserState.to_row()) rows."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?, ?)", list(users))
            db.executemany("INSERT OR REPLACE INTO popularity VALUES (?, ?, ?)", list(popularity))
            db.executemany("INSERT OR REPLACE INTO covisit VALUES (?, ?, ?)", list(covisits))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('next_offset', ?)", (next_offset,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()
