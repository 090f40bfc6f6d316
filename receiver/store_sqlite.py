"""The SQLite backend of the job store (the default of ``gesco up``): ``jobs.sqlite3`` in WAL mode.

One file, one writer at a time: a claim takes the whole database (``BEGIN IMMEDIATE``), so
two worker processes on the same file never claim the same job. Idle workers of another
process are not woken (no LISTEN in SQLite): they look every ``poll_s`` seconds.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from receiver.blobs import FolderBlobs
from receiver.store import LEASE_COLUMNS, BaseJobStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    reason      TEXT,
    batch_key   TEXT NOT NULL,
    settings    TEXT NOT NULL,
    budget      TEXT NOT NULL,
    timings     TEXT NOT NULL DEFAULT '{}',
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    started_at  REAL,
    finished_at REAL
);
"""


class _Tx:
    """A transaction on the store's connection (``?`` placeholders, as SQLite takes them)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, tuple(params))


class SqliteJobStore(BaseJobStore):
    """SQLite rows + job files.

    Args:
        data_dir: the data directory (created), or a :class:`FolderBlobs` of it.
        fsync: fsync files and use ``synchronous=FULL`` (durable against power loss);
            ``False`` is faster and still safe against a crash of the process.
        busy_timeout_s: how long a statement waits for a lock another process holds on
            the database before ``sqlite3.OperationalError: database is locked``.
    """

    backend = "sqlite"

    def __init__(self, data_dir: str | Path | FolderBlobs, fsync: bool = True, busy_timeout_s: float = 5.0) -> None:
        super().__init__(data_dir if isinstance(data_dir, FolderBlobs) else FolderBlobs(data_dir, fsync=fsync))
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.data_dir / "jobs.sqlite3", isolation_level=None, check_same_thread=False,
                                   timeout=busy_timeout_s)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
        with self.transaction() as tx:
            tx.execute(_SCHEMA)
            columns = {r["name"] for r in tx.execute("PRAGMA table_info(jobs)")}
            for name, kind in LEASE_COLUMNS.items():  # a store made by an older gesco
                if name not in columns:
                    tx.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
            tx.execute("CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, batch_key, seq)")
            tx.execute("CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (claim)")

    def describe(self) -> str:
        return f"sqlite ({self.data_dir / 'jobs.sqlite3'})"

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _adding(self) -> threading.RLock:
        return self._lock

    def close(self) -> None:
        with self._lock:
            self._db.close()
