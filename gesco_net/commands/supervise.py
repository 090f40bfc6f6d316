"""Supervision of ``gesco up``'s children: a child that dies is restarted, with backoff.

Before, one dead child (a receiver killed by the OOM killer, say) made ``gesco up``
stop the other two. Now :class:`Supervisor` restarts it after a backoff that starts at
``--restart-backoff`` seconds and doubles after each restart of the same child up to
``--max-restart-backoff``; a child that then ran for ``--restart-reset`` seconds starts
again from the first backoff. Every exit and restart is printed (stderr). With
``--no-restart`` a dead child stops the stack as before.

Nothing accepted is lost across a restart: the receiver resumes its queued jobs from its
store (a running job once its worker's lease has expired, :mod:`receiver.store`), the channel keeps no state besides the budget log, and
the sender and the channel reconnect to a restarted peer within their
``reconnect_backoff_ms`` settings (``GESCO_*_MAX_RECONNECT_BACKOFF_MS``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gesco.errors import GescoError


class Child(Protocol):
    """What the supervisor needs of a service (``gesco_net.commands.up.Service``)."""

    name: str
    process: subprocess.Popen | None


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a dead child.

    Attributes:
        enabled: restart at all (``False``: a dead child is an error, the old behaviour).
        backoff_s: wait before the first restart of a child.
        max_backoff_s: the longest wait (the backoff doubles per restart up to it).
        reset_after_s: a child that ran this long since its last start is healthy
            again: its next restart waits ``backoff_s``.
    """

    enabled: bool = True
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    reset_after_s: float = 60.0

    def delay(self, restarts: int) -> float:
        """Wait before restart number ``restarts + 1`` of a child: ``backoff_s * 2**restarts``, capped."""
        return min(self.max_backoff_s, self.backoff_s * (2.0 ** restarts))


@dataclass
class _State:
    started_at: float
    restarts: int = 0  # restarts since the child was last healthy for reset_after_s
    total_restarts: int = 0
    due: float | None = None  # when the pending restart happens


@dataclass
class Supervisor:
    """Watch children, restart dead ones (see the module docstring).

    Args:
        children: the services, each with a running ``process``.
        launch: starts a child's process again (sets ``child.process``).
        policy: the :class:`RestartPolicy`.
        say: where messages go (stderr by default).
        clock: monotonic seconds (tests pass a fake one).
    """

    children: list
    launch: Callable[[Child], None]
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    say: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        now = self.clock()
        self._state = {c.name: _State(started_at=now) for c in self.children}

    def restarts(self, name: str) -> int:
        """How many times ``name`` was restarted."""
        return self._state[name].total_restarts

    def poll(self) -> None:
        """Check every child once: schedule a restart for a dead one, run restarts that are due.

        Raises:
            GescoError: a child died and restarts are disabled.
        """
        now = self.clock()
        for child in self.children:
            state = self._state[child.name]
            if child.process is None or child.process.poll() is None:
                continue
            if state.due is None:
                code = child.process.returncode
                if not self.policy.enabled:
                    raise GescoError(f"the {child.name} exited unexpectedly (status {code})")
                if now - state.started_at >= self.policy.reset_after_s:
                    state.restarts = 0
                delay = self.policy.delay(state.restarts)
                state.due = now + delay
                self.say(f"gesco up: the {child.name} exited (status {code}); restarting it in {delay:.1f} s "
                         f"(restart {state.total_restarts + 1})")
            if now >= state.due:
                self.launch(child)
                state.due, state.started_at = None, now
                state.restarts += 1
                state.total_restarts += 1
                self.say(f"gesco up: the {child.name} restarted (pid {child.process.pid})")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``gesco up``'s restart options."""
    p.add_argument("--no-restart", action="store_true",
                   help="stop every service when one dies (default: restart the dead one with backoff)")
    p.add_argument("--restart-backoff", type=float, default=1.0,
                   help="seconds before a dead service is restarted the first time (default 1; doubles per restart)")
    p.add_argument("--max-restart-backoff", type=float, default=30.0,
                   help="longest wait between restarts of one service, seconds (default 30)")
    p.add_argument("--restart-reset", type=float, default=60.0,
                   help="a service that ran this many seconds gets the first backoff again (default 60)")


def policy_from_args(args: argparse.Namespace) -> RestartPolicy:
    """The :class:`RestartPolicy` of ``gesco up``'s options (defaults when they are absent)."""
    return RestartPolicy(
        enabled=not getattr(args, "no_restart", False),
        backoff_s=max(0.0, float(getattr(args, "restart_backoff", 1.0))),
        max_backoff_s=max(0.0, float(getattr(args, "max_restart_backoff", 30.0))),
        reset_after_s=max(0.0, float(getattr(args, "restart_reset", 60.0))),
    )
