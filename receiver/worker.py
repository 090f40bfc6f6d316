"""The receiver's worker thread: queued jobs -> FDS -> guided sampling -> PNGs -> done.

The worker claims a batch (up to ``max_batch`` queued jobs with the same sampler, steps
and guidance scale, :meth:`receiver.store.JobStore.claim_batch`), prepares each job's
conditioning with :func:`gesco.link.receiver_maps` (Eq. 2), samples the whole batch in
one call of the generator (each image with its own seed), writes the PNGs and marks
each job done with its timings:

* ``queue_wait_s``: from storing the job to claiming it;
* ``fds_s``: unpacking the symbols, upsampling, FDS and Pad of this job;
* ``sampling_s``: the batch's sampling call (shared by its ``batch_size`` jobs);
* ``png_s``: encoding and writing this job's three PNGs;
* ``total_s``: from storing the job to finishing it.

A job whose frame cannot be prepared fails alone; a failed sampling call fails its batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from gesco.link import ReceiverMaps, TransmitSettings, colour_labels, encode_png, label_from_maps, receiver_maps
from gesco.wire import ReceivedFrame
from receiver.generation import Generator, sampling_settings
from receiver.progress import ProgressBoard
from receiver.store import DENOISED_FILE, IMAGE_FILE, RECEIVED_FILE, Job, JobStore

log = logging.getLogger("gesco.receiver.worker")


class _Prepared(NamedTuple):
    """A job ready for sampling."""

    job: Job
    settings: TransmitSettings
    maps: ReceiverMaps
    timings: dict


class Worker:
    """Processes the store's queue on one background thread.

    Args:
        store: the job store.
        generator: the diffusion pipeline.
        max_batch: most jobs per sampling call.
        fds_kernel: FDS window.
        poll_s: idle wait between queue checks (:meth:`notify` wakes it at once).
        progress: where the running batch's step k of n goes (a new board by default).
        on_done: called with each finished job's timings (the service's metrics).
    """

    def __init__(self, store: JobStore, generator: Generator, max_batch: int = 4, fds_kernel: int = 3,
                 poll_s: float = 1.0, progress: ProgressBoard | None = None,
                 on_done: Callable[[dict], None] = lambda timings: None, max_stored_jobs: int = 0) -> None:
        self.on_done = on_done
        self.store = store
        self.progress = progress or ProgressBoard()
        self.max_stored_jobs = max_stored_jobs
        self.generator = generator
        self.max_batch = max_batch
        self.fds_kernel = fds_kernel
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="receiver-worker", daemon=True)

    def start(self) -> Worker:
        self._thread.start()
        return self

    def notify(self) -> None:
        """A job was queued: look at the queue now."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the current batch (jobs not finished stay queued / running -> resumed at restart)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                jobs = self.store.claim_batch(self.max_batch)
            except Exception:  # the database is unusable right now: log and retry later
                log.exception("cannot claim jobs")
                jobs = []
            if not jobs:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            self.process(jobs)
            self.expire()

    def expire(self) -> None:
        """Drop the oldest finished jobs beyond ``max_stored_jobs`` (logged; errors logged, not raised)."""
        try:
            expired = self.store.expire(self.max_stored_jobs)
        except Exception:
            log.exception("cannot expire old jobs")
            return
        if expired:
            log.info("expired %d finished job(s) beyond the cap of %d stored jobs", len(expired), self.max_stored_jobs)

    def process(self, jobs: list[Job]) -> None:
        """Run one claimed batch to the end (every job ends done or failed)."""
        self.progress.begin([j.id for j in jobs])
        try:
            self._process(jobs)
        finally:
            self.progress.end()

    def _process(self, jobs: list[Job]) -> None:
        prepared = []
        for job in jobs:
            t0 = time.perf_counter()
            try:
                received = ReceivedFrame.FromString(self.store.read_frame(job.id))
                settings = TransmitSettings(**job.settings)
                maps = receiver_maps(received, fds=settings.fds, kernel=self.fds_kernel)
            except Exception as e:
                log.exception("job %s: cannot prepare the conditioning", job.id, extra={"job_id": job.id})
                self.store.mark_failed(job.id, f"cannot prepare the conditioning: {type(e).__name__}: {e}")
                continue
            timings = {
                # >= 0 by construction (claim_batch), clamped against a wall clock stepped back
                "queue_wait_s": round(max(0.0, job.started_at - job.created_at), 6) if job.started_at else None,
                "fds_s": time.perf_counter() - t0,
            }
            prepared.append(_Prepared(job, settings, maps, timings))
        if not prepared:
            return
        cond = torch.stack([p.maps.conditioning for p in prepared])
        self.progress.sampling([p.job.id for p in prepared])
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                images = self.generator.generate(cond, [sampling_settings(p.settings) for p in prepared],
                                                 progress=self.progress.step)
            pixels = self.generator.to_uint8(images)
        except Exception as e:
            log.exception("sampling failed for jobs %s", [p.job.id for p in prepared])
            for p in prepared:
                self.store.mark_failed(p.job.id, f"sampling failed: {type(e).__name__}: {e}")
            return
        sampling_s = time.perf_counter() - t0
        self.progress.writing()
        for (job, _settings, maps, timings), image in zip(prepared, pixels):
            try:
                t0 = time.perf_counter()
                self._write_pngs(job.id, maps, np.asarray(image))
                timings.update(
                    sampling_s=sampling_s,
                    png_s=time.perf_counter() - t0,
                    batch_size=len(prepared),
                    device=str(getattr(self.generator, "device", "cpu")),
                )
                timings["total_s"] = time.time() - job.created_at
                self.store.mark_done(job.id, _rounded(timings))
                self.on_done(timings)
                log.info("job %s done (batch of %d, sampling %.2f s)", job.id, len(prepared), sampling_s, extra={"job_id": job.id})
            except Exception as e:
                log.exception("job %s: cannot write the results", job.id, extra={"job_id": job.id})
                self.store.mark_failed(job.id, f"cannot write the results: {type(e).__name__}: {e}")

    def _write_pngs(self, job_id: str, maps: ReceiverMaps, image: np.ndarray) -> None:
        space = self.generator.space
        self.store.write_file(job_id, IMAGE_FILE, encode_png(image))
        for name, m in ((RECEIVED_FILE, maps.received), (DENOISED_FILE, maps.denoised)):
            label = label_from_maps(m, maps.class_ids)
            self.store.write_file(job_id, name, encode_png(colour_labels(label, space)))


def _rounded(timings: dict) -> dict:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in timings.items()}
