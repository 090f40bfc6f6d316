"""The bit-budget log: one JSON object per line, one line per transmission.

The fields are those of :func:`gesco.link.budget_record` (documented in
``docs/services.md``); ``gesco budget LOG`` summarises a log as a table.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


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

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())

