"""The bit-budget log: one JSON object per line, one line per transmission.

The fields are those of :func:`gesco.link.budget_record` (documented in
``docs/services.md``); ``gesco budget LOG`` summarises a log as a table.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("gesco.channel.budget")


class BudgetLog:
    """Append-only JSON-lines file, safe to share between the server's threads.

    Args:
        path: the log file (its folder is created).
        fsync: flush each line to disk before :meth:`append` returns.
    """

    def __init__(self, path: str | Path, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._ids = self._logged_ids()

    def _logged_ids(self) -> set[str]:
        """Ids that have a line already (read once at start-up; unreadable lines are skipped, logged)."""
        ids: set[str] = set()
        if not self.path.is_file():  # absent (or not a regular file: nothing to read back)
            return ids
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                try:
                    ids.add(str(json.loads(line)["id"]))
                except (ValueError, KeyError, TypeError):
                    log.warning("budget log %s: line %d is not a JSON record with an id; ignored", self.path, n)
        return ids

    def append(self, record: dict[str, Any]) -> None:
        """Append one line (even when the id has one already)."""
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        with self._lock:
            self._write(line)
            self._ids.add(str(record.get("id")))

    def append_once(self, record: dict[str, Any]) -> bool:
        """Append the record unless its id has a line already; return whether it was written.

        A transmission repeated with the same id (a client's retry after a lost reply, an
        identical repeated Transmit) gets exactly one line: the first delivery that the
        receiver acknowledged writes it, whichever attempt that is.
        """
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        key = str(record.get("id"))
        with self._lock:
            if key in self._ids:
                return False
            self._write(line)
            self._ids.add(key)
        return True

    def _write(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            if self.fsync and stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # a pipe cannot be fsynced
                os.fsync(f.fileno())

