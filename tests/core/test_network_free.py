"""The core library imports no network stack (grpc, uvicorn, fastapi, httpx, starlette).

Each check runs in a fresh interpreter whose import system refuses those packages, so a
module that pulls one in, however indirectly, fails with ImportError here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKED = ("grpc", "grpc_health", "uvicorn", "fastapi", "httpx", "starlette")

#: modules that make up the network-free core: the formulas, training and the evaluation
CORE_MODULES = [
    "gesco.link",
    "gesco.wire",
    "gesco.channel",
    "gesco.codecs",
    "gesco.semantics.fds",
    "gesco.diffusion.pipeline",
    "gesco.diffusion.samplers",
    "gesco.train.diffusion",
    "gesco.segment",
    "gesco.evaluate.runner",
    "gesco.evaluate.sampler_study",
    "gesco.commands.evaluate",
    "gesco.commands.train",
    "gesco.commands.budget",
]

_BLOCKER = textwrap.dedent(
    f"""
    import importlib.abc, sys
    BLOCKED = {BLOCKED!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"network package {{name}} imported by the core")
            return None
    sys.meta_path.insert(0, Block())
    """
)


def _import_blocked(modules: list[str]) -> subprocess.CompletedProcess:
    """Import ``modules`` one by one in a fresh interpreter with the network packages blocked;
    it prints ``FAIL module: error`` for each that fails, ``ok`` for each that loads."""
    code = _BLOCKER + textwrap.dedent(
        f"""
        import importlib
        for m in {modules!r}:
            try:
                importlib.import_module(m)
                print("ok", m)
            except ImportError as e:
                print("FAIL", m + ":", e)
        """
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_the_blocker_blocks():
    """The check can fail: a module that needs grpc is refused."""
    r = _import_blocked(["gesco.wire.gesco_pb2_grpc"])
    assert "FAIL gesco.wire.gesco_pb2_grpc: network package grpc" in r.stdout, r.stdout + r.stderr


def test_core_modules_import_without_network_packages():
    r = _import_blocked(CORE_MODULES)
    assert r.returncode == 0, r.stderr[-2000:]
    failures = [line for line in r.stdout.splitlines() if line.startswith("FAIL")]
    assert not failures, "\n".join(failures)
    assert r.stdout.count("ok ") == len(CORE_MODULES)
