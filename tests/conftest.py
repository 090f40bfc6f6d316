"""Fixtures shared by the whole test tree, and the CI's no-skip guard.

``GESCO_FAIL_ON_SKIP=1`` (``.ci/run`` sets it): a run in which any test or test module was
skipped fails, after listing every skip and its reason. CI installs every extra and tool the
suite knows, so a skip there means an install went wrong, not that the test may be left out.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(relative: str) -> ModuleType:
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def load_script() -> Callable[[str], ModuleType]:
    """``load_script("bench/bench_gpu.py")``: import a script of the repository (``bench/``,
    ``scripts/``; not a package) as a module, to test its functions and ``main``."""
    return _load


_SKIPS: list[str] = []


def _skip_reason(report: pytest.BaseReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return str(longrepr[2])
    return str(longrepr)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _SKIPS.append(f"{report.nodeid}: {_skip_reason(report)}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPS.append(f"{report.nodeid}: {_skip_reason(report)}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("GESCO_FAIL_ON_SKIP") == "1" and _SKIPS and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if os.environ.get("GESCO_FAIL_ON_SKIP") == "1" and _SKIPS:
        terminalreporter.section("GESCO_FAIL_ON_SKIP=1: skipped tests fail this run", sep="=", red=True)
        for line in _SKIPS:
            terminalreporter.line(line)


@pytest.fixture(scope="session")
def postgres():
    """A throw-away Postgres server (tests/services/pg_helpers.py); skipped when the binaries are
    missing, except under ``GESCO_REQUIRE_POSTGRES=1`` (CI), where that fails the test."""
    import os

    pg = _load("tests/services/pg_helpers.py")
    bin_dir = pg.find_bin()
    if bin_dir is None:
        msg = "Postgres binaries (initdb, pg_ctl) not found; install postgresql or set GESCO_PG_BIN"
        if os.environ.get("GESCO_REQUIRE_POSTGRES") == "1":
            pytest.fail(msg + " (GESCO_REQUIRE_POSTGRES=1)")
        pytest.skip(msg)
    server = pg.PostgresServer(bin_dir)
    yield server
    server.close()
