"""Running a uvicorn server in the main thread so that SIGINT / SIGTERM end it cleanly.

uvicorn shuts down gracefully on SIGINT / SIGTERM and then re-raises the signal with
the handlers it found at start-up. With Python's default handlers that kills the
process before the caller's clean-up (stopping a gRPC server, a worker thread) runs;
:func:`run_uvicorn` installs handlers that only record the signal, so ``run_uvicorn``
returns and the caller cleans up and exits with status 0.
"""

from __future__ import annotations

import signal

import uvicorn


def run_uvicorn(config: uvicorn.Config) -> int | None:
    """Serve until SIGINT / SIGTERM; return the signal number (``None`` if it stopped otherwise)."""
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return received[0] if received else None
