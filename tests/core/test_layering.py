"""Package layering: lower packages never import higher ones (no import loops).

``gesco.semantics`` (class spaces, FDS, mIoU) is below ``gesco.segment`` (the segmenter and
its scoring), which is below ``gesco.evaluate`` (the evaluation, which uses the segmenter).
"""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("modules", "must_not_load"),
    [
        (["gesco.segment", "gesco.segment.evaluate"], ["gesco.evaluate"]),
        (["gesco.semantics.miou", "gesco.semantics.fds"], ["gesco.segment", "gesco.evaluate"]),
    ],
)
def test_lower_package_does_not_import_higher(modules, must_not_load):
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            f"print(sorted(m for m in sys.modules if any(m == p or m.startswith(p + '.') for p in {must_not_load!r})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]", f"{modules} load {r.stdout.strip()}"
