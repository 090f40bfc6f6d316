"""A sweep's results in Postgres, shared by several ``gesco evaluate`` workers that claim cells.

``gesco evaluate --store postgresql://... --sweep NAME`` on several GPUs or machines: every
worker runs the same command; they share one result store (the rows of
:class:`gesco.evaluate.store.ResultStore`, keyed by the sweep's name) and split the work by
**cells**: one row at one PSNR on one block of ``batch_size`` scenes (scenes
``k * batch_size .. (k + 1) * batch_size - 1``), the same blocks for every worker. A worker
claims a cell (``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` the cell is free or its lease
has expired), evaluates its missing scenes, stores them and marks the cell done; cells
claimed by a live worker are skipped, then waited for. A worker that dies leaves its cell
to whoever finds the lease expired, so a sweep resumes after any of them dies.

Every image's numbers come from its scene's own seed, so a cell evaluated twice (a worker
slower than its lease) stores the same numbers again (``ON CONFLICT DO UPDATE``): wasted
time, never a mixed result. Each worker writes the report into its own ``--out`` folder
from the shared results once every cell is done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gesco.errors import GescoError
from gesco.evaluate.store import ResultStore, UnitResult, psnr_key

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS eval_meta (sweep TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
    "PRIMARY KEY (sweep, key))",
    "CREATE TABLE IF NOT EXISTS eval_results (sweep TEXT NOT NULL, row TEXT NOT NULL, psnr TEXT NOT NULL, "
    "scene INTEGER NOT NULL, metrics TEXT NOT NULL, features BYTEA NOT NULL, PRIMARY KEY (sweep, row, psnr, scene))",
    "CREATE TABLE IF NOT EXISTS eval_cells (sweep TEXT NOT NULL, row TEXT NOT NULL, psnr TEXT NOT NULL, "
    "block INTEGER NOT NULL, worker TEXT NOT NULL, lease_until DOUBLE PRECISION NOT NULL, "
    "done BOOLEAN NOT NULL DEFAULT FALSE, PRIMARY KEY (sweep, row, psnr, block))",
)


class SharedStoreError(GescoError):
    """The sweep's Postgres store is unreachable or its URL malformed."""


class PostgresResultStore(ResultStore):
    """The result store of sweep ``sweep`` in a Postgres database (same methods as :class:`ResultStore`).

    Args:
        url: ``postgresql://user@host:port/db``.
        sweep: the sweep's name (several sweeps can share one database).
        worker: this worker's name (shown in ``eval_cells``).
        lease_s: a claimed cell is free again this long after the claim.
    Raises:
        SharedStoreError: malformed URL or unreachable server (the message has no password).
    """

    shared = True

    def __init__(self, url: str, sweep: str, worker: str, lease_s: float = 900.0) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError as e:
            raise SharedStoreError(f"malformed --store URL: {str(e).splitlines()[0]}") from None
        params.pop("password", None)
        self.where = make_conninfo(**params)
        self.path = Path(f"postgres:{self.where}#{sweep}")  # for messages (check_meta names it)
        self.sweep, self.worker, self.lease_s = sweep, worker, lease_s
        try:
            self._pg = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as e:
            raise SharedStoreError(f"cannot reach the sweep's store at {self.where}: {str(e).splitlines()[0]}") from None
        with self._pg.transaction():
            self._pg.execute("SELECT pg_advisory_xact_lock(7311)")  # workers starting together: one creates
            for statement in _SCHEMA:
                self._pg.execute(statement)

    def close(self) -> None:
        self._pg.close()

    # ------------------------------------------------------------------ settings
    def get_meta(self, key: str) -> Any:
        row = self._pg.execute("SELECT value FROM eval_meta WHERE sweep = %s AND key = %s", (self.sweep, key)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self._pg.execute("INSERT INTO eval_meta (sweep, key, value) VALUES (%s, %s, %s) ON CONFLICT (sweep, key) "
                         "DO UPDATE SET value = EXCLUDED.value", (self.sweep, key, json.dumps(value, sort_keys=True)))

    def check_meta(self, key: str, value: dict[str, Any]) -> None:
        """As :meth:`ResultStore.check_meta`; the first worker records, every other one must agree."""
        normal = json.loads(json.dumps(value, sort_keys=True))
        self._pg.execute("INSERT INTO eval_meta (sweep, key, value) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                         (self.sweep, key, json.dumps(normal, sort_keys=True)))
        super().check_meta(key, value)

    # ------------------------------------------------------------------ results
    def done(self, row: str, psnr: float | None) -> set[int]:
        cur = self._pg.execute("SELECT scene FROM eval_results WHERE sweep = %s AND row = %s AND psnr = %s",
                               (self.sweep, row, psnr_key(psnr)))
        return {int(r[0]) for r in cur}

    def add(self, results: list[UnitResult]) -> None:
        with self._pg.transaction(), self._pg.cursor() as cur:
            cur.executemany(
                "INSERT INTO eval_results (sweep, row, psnr, scene, metrics, features) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (sweep, row, psnr, scene) DO UPDATE SET metrics = EXCLUDED.metrics, features = EXCLUDED.features",
                [(self.sweep, r.row, psnr_key(r.psnr), int(r.scene), json.dumps(r.metrics),
                  np.ascontiguousarray(r.features, dtype=np.float32).tobytes()) for r in results],
            )

    def load(self, row: str, psnr: float | None, scenes: int) -> tuple[list[int], list[dict[str, Any]], np.ndarray]:
        cur = self._pg.execute(
            "SELECT scene, metrics, features FROM eval_results WHERE sweep = %s AND row = %s AND psnr = %s AND scene < %s "
            "ORDER BY scene", (self.sweep, row, psnr_key(psnr), int(scenes)))
        index, metrics, feats = [], [], []
        for i, m, f in cur:
            index.append(int(i))
            metrics.append(json.loads(m))
            feats.append(np.frombuffer(bytes(f), dtype=np.float32))
        return index, metrics, (np.stack(feats) if feats else np.zeros((0, 0), np.float32))

    def count(self) -> int:
        return int(self._pg.execute("SELECT COUNT(*) FROM eval_results WHERE sweep = %s", (self.sweep,)).fetchone()[0])

    def __iter__(self) -> Iterator[tuple[str, str, int]]:
        yield from self._pg.execute("SELECT row, psnr, scene FROM eval_results WHERE sweep = %s ORDER BY row, psnr, scene",
                                    (self.sweep,))

    # ------------------------------------------------------------------ cells
    def claim_cell(self, row: str, psnr: float | None, block: int) -> bool:
        """Claim one cell for this worker: ``True`` when it was free, expired or already ours."""
        now = time.time()
        got = self._pg.execute(
            "INSERT INTO eval_cells (sweep, row, psnr, block, worker, lease_until) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (sweep, row, psnr, block) DO UPDATE SET worker = EXCLUDED.worker, lease_until = EXCLUDED.lease_until "
            "WHERE NOT eval_cells.done AND (eval_cells.lease_until < %s OR eval_cells.worker = EXCLUDED.worker) "
            "RETURNING worker",
            (self.sweep, row, psnr_key(psnr), int(block), self.worker, now + self.lease_s, now),
        ).fetchone()
        return got is not None

    def finish_cell(self, row: str, psnr: float | None, block: int) -> None:
        self._pg.execute("UPDATE eval_cells SET done = TRUE WHERE sweep = %s AND row = %s AND psnr = %s AND block = %s",
                         (self.sweep, row, psnr_key(psnr), int(block)))

    def cells(self) -> list[tuple[str, str, int, str, bool]]:
        """``(row, psnr, block, worker, done)`` of every claimed cell of the sweep."""
        return [tuple(r) for r in self._pg.execute(
            "SELECT row, psnr, block, worker, done FROM eval_cells WHERE sweep = %s ORDER BY row, psnr, block", (self.sweep,))]
