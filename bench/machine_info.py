"""The machine a benchmark ran on, described once for every bench script's results file.

Import it from a bench script after putting ``bench/`` on ``sys.path`` (a script run as
``python bench/x.py`` has it; one loaded by the tests with ``importlib`` adds it itself).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s "model name"; elsewhere what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe_machine(threads: str | None = None) -> str:
    """One line for a results file: CPU model, cores visible and the thread setting.

    Args:
        threads: how the benchmark used threads (e.g. ``"torch/numpy single-threaded"``),
            written before ``OMP_NUM_THREADS``; ``None``: only ``OMP_NUM_THREADS``.
    Returns:
        e.g. ``"AMD EPYC 7B13, 2 cores visible, OMP_NUM_THREADS=1"``.
    """
    omp = f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    return f"{cpu_model()}, {os.cpu_count()} cores visible, " + (f"{threads} ({omp})" if threads else omp)
