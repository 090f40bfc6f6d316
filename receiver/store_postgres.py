"""The Postgres backend of the job store (psycopg 3): one database for many receivers and workers.

* A claim locks its rows with ``FOR UPDATE SKIP LOCKED``: two workers claiming at the same
  moment take different jobs, never the same one, and neither waits for the other.
* A new job is announced with ``NOTIFY gesco_jobs`` in the transaction that stores it
  (delivered on commit); idle workers ``LISTEN`` on their own connection instead of polling.
* Each process holds one connection for its statements (behind a lock) and one for LISTEN.
  A statement that fails because the server went away raises
  :class:`receiver.store.StoreUnavailableError` (the ingest answers UNAVAILABLE) and drops
  the connection; the next statement connects again, so the process recovers by itself
  once Postgres is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from receiver.blobs import FolderBlobs
from receiver.store import LEASE_COLUMNS, BaseJobStore, StoreConfigError, StoreUnavailableError

log = logging.getLogger("gesco.receiver.store")

#: the NOTIFY channel of new jobs
CHANNEL = "gesco_jobs"
#: advisory lock held while creating the schema (processes starting together do not race)
_SCHEMA_LOCK = 0x6765_7363_6F  # "gesco"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    reason      TEXT,
    batch_key   TEXT NOT NULL,
    settings    TEXT NOT NULL,
    budget      TEXT NOT NULL,
    timings     TEXT NOT NULL DEFAULT '{}',
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  DOUBLE PRECISION NOT NULL,
    started_at  DOUBLE PRECISION,
    finished_at DOUBLE PRECISION
)
"""


def safe_conninfo(url: str) -> str:
    """The connection string without its password (for messages and logs).

    Raises:
        StoreConfigError: ``url`` is not a valid libpq URL / conninfo.
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        raise StoreConfigError(f"malformed Postgres URL: {str(e).splitlines()[0]}") from None
    params.pop("password", None)
    for port in str(params.get("port") or "5432").split(","):  # libpq itself only fails when connecting
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise StoreConfigError(f"malformed Postgres URL: port {port[:20]!r} is not a number in 1-65535")
    return make_conninfo(**params)


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` set (read from a secret file); the result is a libpq conninfo string."""
    safe_conninfo(url)  # StoreConfigError for a malformed URL
    return make_conninfo(url, password=password)


class _Tx:
    """A transaction on the store's connection; ``?`` placeholders become psycopg's ``%s``."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        return self._conn.execute(sql.replace("?", "%s"), tuple(params))


class PostgresJobStore(BaseJobStore):
    """Postgres rows + job files on a folder every process shares.

    Args:
        url: ``postgresql://user[:password]@host[:port]/dbname`` (or libpq ``key=value`` pairs;
            ``host=/some/dir`` is a unix socket folder).
        blobs: the job files.
        connect_timeout_s: how long a connection attempt waits.
    Raises:
        StoreConfigError: a malformed URL.
        StoreUnavailableError: the server cannot be reached now (the message names it, without the password).
    """

    backend = "postgres"
    lock_rows = " FOR UPDATE SKIP LOCKED"
    commit_may_survive_errors = True  # a connection lost during COMMIT: the row may have been stored

    def __init__(self, url: str, blobs: FolderBlobs, connect_timeout_s: float = 5.0) -> None:
        super().__init__(blobs)
        self.where = safe_conninfo(url)  # StoreConfigError first: before any connection attempt
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        self._listen: psycopg.Connection | None = None
        with self.transaction() as tx:
            tx.execute(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
            tx.execute(_SCHEMA)
            for name, kind in LEASE_COLUMNS.items():  # a store made by an older gesco
                tx.execute(f"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS {name} {kind}")
            tx.execute("CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, model, batch_key, seq)")
            tx.execute("CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (claim)")

    def describe(self) -> str:
        return f"postgres ({self.where})"

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, autocommit=True, row_factory=dict_row,
                                   connect_timeout=max(1, round(self.connect_timeout_s)))
        except psycopg.Error as e:
            raise StoreUnavailableError(f"cannot reach the job store at {self.where}: {_first_line(e)}") from None

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            try:
                with self._conn.transaction():
                    yield _Tx(self._conn)
            except psycopg.OperationalError as e:  # the server went away (restart, network): reconnect next time
                self._drop()
                raise StoreUnavailableError(f"the job store at {self.where} failed: {_first_line(e)}") from None
            except psycopg.InterfaceError as e:
                self._drop()
                raise StoreUnavailableError(f"the job store connection is unusable: {_first_line(e)}") from None

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _announce(self, tx: _Tx) -> None:
        tx.execute(f"NOTIFY {CHANNEL}")

    def wait_for_jobs(self, timeout: float, wake: threading.Event) -> None:
        """Wait for a NOTIFY of a new job (any process), ``wake`` or ``timeout``; clears ``wake``.

        Without a LISTEN connection (the server is down) it sleeps on ``wake`` instead."""
        deadline = time.monotonic() + timeout
        while not wake.is_set() and time.monotonic() < deadline:
            try:
                if self._listen is None or self._listen.closed:
                    self._listen = self._connect()
                    self._listen.execute(f"LISTEN {CHANNEL}")
                for _ in self._listen.notifies(timeout=min(0.25, max(0.0, deadline - time.monotonic())), stop_after=1):
                    wake.set()
            except (psycopg.Error, StoreUnavailableError) as e:
                log.warning("cannot listen for new jobs (%s); polling", _first_line(e))
                if self._listen is not None:
                    self._listen.close()
                self._listen = None
                wake.wait(max(0.0, deadline - time.monotonic()))
        wake.clear()

    def close(self) -> None:
        with self._lock:
            self._drop()
        if self._listen is not None:
            self._listen.close()
            self._listen = None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]
