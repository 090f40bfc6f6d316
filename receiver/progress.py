"""Sampling progress of the jobs the worker is running: step k of n and an ETA.

The worker thread writes (:meth:`ProgressBoard.begin`, the sampler's ``progress(done,
total)`` callback through :meth:`ProgressBoard.step`, :meth:`ProgressBoard.end`); the REST
app reads (:meth:`ProgressBoard.get`) for ``GET /result/{id}``. In memory only: after a
restart a resumed job starts again at step 0.

ETA of a running batch after ``k`` of ``n`` network evaluations, ``t`` seconds after the
first one started::

    eta_s = t / k * (n - k)          (None before the first step is done)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """Where one job is.

    Attributes:
        stage: ``"preparing"`` (FDS, conditioning), ``"sampling"`` or ``"writing"`` (PNGs).
        step: network evaluations done in the batch's sampling call (``k``).
        steps: network evaluations of the call (``n``; 0 until sampling starts).
        elapsed_s: seconds since sampling started (0 before).
        eta_s: estimated seconds until sampling ends (``None`` before the first step).
        batch_size: jobs sampled together.
    """

    stage: str
    step: int
    steps: int
    elapsed_s: float
    eta_s: float | None
    batch_size: int

    def to_dict(self) -> dict:
        return {"stage": self.stage, "step": self.step, "steps": self.steps, "elapsed_s": round(self.elapsed_s, 3),
                "eta_s": None if self.eta_s is None else round(self.eta_s, 3), "batch_size": self.batch_size}


class ProgressBoard:
    """Thread-safe progress of the running batch (the worker runs one batch at a time)."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: tuple[str, ...] = ()
        self._stage = "preparing"
        self._step = 0
        self._steps = 0
        self._t0: float | None = None

    def begin(self, job_ids: list[str], stage: str = "preparing") -> None:
        """A batch starts (replaces whatever was there)."""
        with self._lock:
            self._jobs = tuple(job_ids)
            self._stage, self._step, self._steps, self._t0 = stage, 0, 0, None

    def sampling(self, job_ids: list[str]) -> None:
        """The batch (these jobs: the prepared ones) enters the sampling call."""
        with self._lock:
            self._jobs = tuple(job_ids)
            self._stage, self._step, self._steps, self._t0 = "sampling", 0, 0, self._clock()

    def step(self, done: int, total: int) -> None:
        """The sampler's ``progress(done, total)`` callback."""
        with self._lock:
            if self._t0 is None:
                self._t0 = self._clock()
            self._step, self._steps = int(done), int(total)

    def writing(self) -> None:
        with self._lock:
            self._stage = "writing"

    def end(self) -> None:
        """The batch is over (every job done or failed)."""
        with self._lock:
            self._jobs, self._stage, self._step, self._steps, self._t0 = (), "preparing", 0, 0, None

    def get(self, job_id: str) -> Progress | None:
        """The job's progress, or ``None`` when it is not in the running batch."""
        with self._lock:
            if job_id not in self._jobs:
                return None
            elapsed = 0.0 if self._t0 is None else max(0.0, self._clock() - self._t0)
            eta = None
            if self._stage == "sampling" and self._step > 0 and self._steps >= self._step:
                eta = elapsed / self._step * (self._steps - self._step)
            elif self._stage == "writing":
                eta = 0.0
            return Progress(self._stage, self._step, self._steps, elapsed, eta, len(self._jobs))
