"""The evaluation's results on disk: one SQLite file, one record per (row, PSNR, scene).

Every finished batch is committed at once, so an interrupted evaluation loses at most
the batch in flight; a restart reads :meth:`ResultStore.done` and skips what is there.
The file also keeps the settings the results were made with (:meth:`ResultStore.check_meta`):
resuming with settings that would change the numbers is refused rather than mixing two
experiments in one table.

Tables::

    meta(key TEXT PRIMARY KEY, value TEXT)                       -- JSON values
    results(row TEXT, psnr TEXT, scene INTEGER,                  -- psnr "10", "-" for the real row
            metrics TEXT,                                        -- JSON dict of per-image numbers
            features BLOB,                                       -- float32 Frechet features
            PRIMARY KEY (row, psnr, scene))
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gesco.errors import GescoInputError

#: PSNR key of rows that do not depend on the channel (the real images)
NO_PSNR = "-"


def psnr_key(psnr: float | None) -> str:
    """``10.0 -> "10"``, ``2.5 -> "2.5"``, ``None -> "-"``."""
    return NO_PSNR if psnr is None else f"{float(psnr):g}"


@dataclass(frozen=True)
class UnitResult:
    """The numbers of one image: row ``row`` at ``psnr`` (``None`` for the real row) on scene ``scene``."""

    row: str
    psnr: float | None
    scene: int
    metrics: dict[str, Any]
    features: np.ndarray  # (D,) float32


class ResultStore:
    """Per-image results of an evaluation, in ``<out>/results.sqlite``.

    One worker owns it: :meth:`claim_cell` always succeeds. Several workers of one sweep
    share :class:`gesco.evaluate.shared_store.PostgresResultStore` instead, where claims count.
    """

    #: whether other workers write into the same results (then cells are claimed)
    shared = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path))
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS results (row TEXT NOT NULL, psnr TEXT NOT NULL, scene INTEGER NOT NULL, "
                "metrics TEXT NOT NULL, features BLOB NOT NULL, PRIMARY KEY (row, psnr, scene))"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ settings
    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                             (key, json.dumps(value, sort_keys=True)))

    def check_meta(self, key: str, value: dict[str, Any]) -> None:
        """Record ``value`` under ``key``, or check it equals what an earlier run recorded.

        Raises:
            GescoInputError: the store holds results made with other settings (names the
                differing fields); start a new output folder to change them.
        """
        value = json.loads(json.dumps(value, sort_keys=True))  # normalise tuples, floats
        old = self.get_meta(key)
        if old is None:
            self.set_meta(key, value)
            return
        if old != value:
            diff = [f"{k}: {old.get(k)!r} -> {value.get(k)!r}" for k in sorted(set(old) | set(value))
                    if old.get(k) != value.get(k)]
            raise GescoInputError(
                f"{self.path} holds results made with other settings ({key}: {'; '.join(diff)}); "
                "use another --out folder (or delete this one) to evaluate with the new settings"
            )

    # ------------------------------------------------------------------ results
    def done(self, row: str, psnr: float | None) -> set[int]:
        """Scenes already evaluated for ``row`` at ``psnr``."""
        cur = self._db.execute("SELECT scene FROM results WHERE row = ? AND psnr = ?", (row, psnr_key(psnr)))
        return {int(r[0]) for r in cur}

    def add(self, results: list[UnitResult]) -> None:
        """Store a batch of results in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO results (row, psnr, scene, metrics, features) VALUES (?, ?, ?, ?, ?)",
                [
                    (r.row, psnr_key(r.psnr), int(r.scene), json.dumps(r.metrics),
                     np.ascontiguousarray(r.features, dtype=np.float32).tobytes())
                    for r in results
                ],
            )

    def load(self, row: str, psnr: float | None, scenes: int) -> tuple[list[int], list[dict[str, Any]], np.ndarray]:
        """Results of ``row`` at ``psnr`` on scenes ``0..scenes-1``, in scene order.

        Returns:
            ``(scene indices, metrics dicts, features (n, D) float32)``.
        """
        cur = self._db.execute(
            "SELECT scene, metrics, features FROM results WHERE row = ? AND psnr = ? AND scene < ? ORDER BY scene",
            (row, psnr_key(psnr), int(scenes)),
        )
        index, metrics, feats = [], [], []
        for i, m, f in cur:
            index.append(int(i))
            metrics.append(json.loads(m))
            feats.append(np.frombuffer(f, dtype=np.float32))
        return index, metrics, (np.stack(feats) if feats else np.zeros((0, 0), np.float32))

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def claim_cell(self, row: str, psnr: float | None, block: int) -> bool:
        """Claim the cell ``row`` x ``psnr`` x scene block ``block`` for this worker (always, here)."""
        return True

    def finish_cell(self, row: str, psnr: float | None, block: int) -> None:
        """Mark a claimed cell done (nothing to do for a store of one worker)."""
        return None

    def __iter__(self) -> Iterator[tuple[str, str, int]]:
        yield from self._db.execute("SELECT row, psnr, scene FROM results ORDER BY row, psnr, scene")
