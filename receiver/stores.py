"""Which job store a URL names: :func:`open_store` and :func:`check_store_url`.

The interface and its SQL are :mod:`receiver.store`; the backends, which import it, are
:mod:`receiver.store_sqlite` and :mod:`receiver.store_postgres`. This module sits above all
three, so none of them imports another's importer (no import circle). Postgres' module
(and psycopg) is imported only when a URL names Postgres.
"""

from __future__ import annotations

from pathlib import Path

from receiver.blobs import FolderBlobs
from receiver.store import BaseJobStore, StoreConfigError
from receiver.store_sqlite import SqliteJobStore

#: the default backend (SQLite in the data directory) under its short name
JobStore = SqliteJobStore


def open_store(url: str | None, data_dir: str | Path, fsync: bool = True, busy_timeout_s: float = 5.0) -> BaseJobStore:
    """The job store a URL names; the job files go under ``data_dir`` in both cases.

    Args:
        url: ``""`` / ``None``: SQLite in ``data_dir/jobs.sqlite3``; ``postgresql://user@host:port/db``
            (or ``postgres://``, or libpq ``key=value`` pairs with ``host=``): that database.
    Raises:
        StoreConfigError: a malformed URL or another database.
        StoreUnavailableError: Postgres cannot be reached.
    """
    kind = check_store_url(url)
    blobs = FolderBlobs(data_dir, fsync=fsync)
    if kind == "sqlite":
        return SqliteJobStore(blobs, busy_timeout_s=busy_timeout_s)
    from receiver.store_postgres import PostgresJobStore

    return PostgresJobStore(url, blobs, connect_timeout_s=busy_timeout_s)


def check_store_url(url: str | None) -> str:
    """``"sqlite"`` (empty URL) or ``"postgres"``, without connecting.

    Raises:
        StoreConfigError: another database, or a malformed Postgres URL (the message says what is wrong).
    """
    if not url:
        return "sqlite"
    if url.startswith(("postgresql://", "postgres://")) or ("=" in url and "://" not in url):
        from receiver.store_postgres import safe_conninfo

        safe_conninfo(url)
        return "postgres"
    scheme = url.split("://", 1)[0] if "://" in url else url[:20]
    raise StoreConfigError(f"the job store must be empty (SQLite in the data directory) or a postgresql:// URL; "
                           f"got a {scheme!r} URL")
