"""``GET /readyz``: is the service able to do its work now (distinct from ``/healthz``: alive)?

``/healthz`` answers 200 as long as the process serves HTTP (a liveness probe: restart
it when this fails). ``/readyz`` runs the service's checks and answers 200 when all
pass, 503 with the failing checks otherwise (a readiness probe: send no traffic while
it fails). Each check returns ``"ok"``-style text or raises / returns a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field


class Readiness(BaseModel):
    """Reply of ``GET /readyz``."""

    ready: bool = Field(description="True when every check passed (HTTP 200), else HTTP 503.")
    checks: dict[str, str] = Field(description="Each check: 'ok' or why it failed.")


class NotReady(Exception):
    """A readiness check failed (its message says why)."""


def run_checks(checks: dict[str, Callable[[], str | None]]) -> JSONResponse:
    """Run each check (``None`` / text: passed; :class:`NotReady` or any exception: failed)."""
    results: dict[str, str] = {}
    ready = True
    for name, check in checks.items():
        try:
            results[name] = check() or "ok"
        except NotReady as e:
            ready, results[name] = False, f"not ready: {e}"
        except Exception as e:
            ready, results[name] = False, f"not ready: {type(e).__name__}: {e}"
    body = Readiness(ready=ready, checks=results)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def directory_writable(path: Path) -> str:
    """Create, write, fsync and delete a small file in ``path`` (raises :class:`NotReady` when it cannot)."""
    probe = Path(path) / f".readyz-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        raise NotReady(f"cannot write in {path}: {e.strerror or e}") from None
    return "ok"


READYZ_RESPONSES = {503: {"model": Readiness, "description": "A check failed (see 'checks')."}}
