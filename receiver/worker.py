"""The receiver's worker thread: queued jobs -> FDS -> guided sampling -> PNGs -> done.

The worker claims a batch (up to ``max_batch`` queued jobs with the same sampler, steps
and guidance scale, :meth:`receiver.store.BaseJobStore.claim_batch`), prepares each job's
conditioning with :func:`gesco.link.receiver_maps` (Eq. 2), samples the whole batch in
one call of the generator (each image with its own seed), writes the PNGs and marks
each job done with its timings:

* ``queue_wait_s``: from storing the job to claiming it;
* ``fds_s``: unpacking the symbols, upsampling, FDS and Pad of this job;
* ``sampling_s``: the batch's sampling call (shared by its ``batch_size`` jobs);
* ``png_s``: encoding and writing this job's three PNGs;
* ``total_s``: from storing the job to finishing it.

A job whose frame cannot be prepared fails alone; a failed sampling call fails its batch.

Several workers (threads of one receiver, or ``receiver-worker`` processes on other GPUs
and machines) can share one store. Each claim is a lease (:mod:`receiver.store`): the
worker renews it on a side thread while it samples; before claiming, a worker puts the
jobs of expired leases (a worker that died) back in the queue. A worker claims only jobs
checked against its own model (:func:`receiver.generation.model_key`), and writes its
results into its claim's folder, finishing a job only while it still holds the claim.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from gesco.appearance import Appearance
from gesco.link import (
    ReceiverMaps,
    TransmitSettings,
    appearance_target,
    colour_labels,
    encode_png,
    label_from_maps,
    received_appearance,
    receiver_maps,
)
from gesco.wire import ReceivedFrame
from receiver.generation import Generator, mean_temperature, model_key, sampling_settings
from receiver.progress import ProgressBoard
from receiver.store import DEFAULT_LEASE_S, DENOISED_FILE, IMAGE_FILE, RECEIVED_FILE, BaseJobStore, Job

log = logging.getLogger("gesco.receiver.worker")


class _Prepared(NamedTuple):
    """A job ready for sampling."""

    job: Job
    settings: TransmitSettings
    maps: ReceiverMaps
    timings: dict
    appearance: Appearance | None = None  # the appearance side channel's colours (gesco.appearance)


class Worker:
    """Processes the store's queue on one background thread.

    Args:
        store: the job store.
        generator: the diffusion pipeline.
        max_batch: most jobs per sampling call.
        fds_kernel: FDS window.
        poll_s: idle wait between queue checks (:meth:`notify`, or a Postgres NOTIFY, wakes it at once).
        progress: where the running batch's step k of n goes (a new board by default).
        on_done: called with each finished job's timings (the service's metrics).
        max_stored_jobs: finished jobs kept (0: all); older ones expire after each batch.
        name: this worker in the job rows (default ``host:pid``).
        lease_s: a claim expires this long after its last renewal (renewed every ``lease_s / 3``).
        max_attempts: a job whose lease expired this many times is failed instead of requeued.
        model: the model key it claims (default :func:`receiver.generation.model_key` of ``generator``).
    """

    def __init__(self, store: BaseJobStore, generator: Generator, max_batch: int = 4, fds_kernel: int = 3,
                 poll_s: float = 1.0, progress: ProgressBoard | None = None,
                 on_done: Callable[[dict], None] = lambda timings: None, max_stored_jobs: int = 0,
                 name: str | None = None, lease_s: float = DEFAULT_LEASE_S, max_attempts: int = 3,
                 model: str | None = None) -> None:
        self.on_done = on_done
        self.store = store
        self.progress = progress or ProgressBoard()
        self.max_stored_jobs = max_stored_jobs
        self.generator = generator
        self.max_batch = max_batch
        self.fds_kernel = fds_kernel
        self.poll_s = poll_s
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.model = model if model is not None else model_key(generator)
        self._refused_logged = 0.0
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
            jobs = self.claim()
            if not jobs:
                self.store.wait_for_jobs(self.poll_s, self._wake)
                continue
            self.process(jobs)
            self.expire()

    def claim(self) -> list[Job]:
        """Requeue the jobs of expired leases, then claim a batch of this worker's model
        (empty when nothing is queued or the store is unreachable: logged, retried later)."""
        try:
            requeued, failed = self.store.requeue_expired(self.max_attempts)
            if requeued or failed:
                log.warning("expired leases: %d job(s) requeued, %d failed after %d attempts", requeued, failed,
                            self.max_attempts)
            jobs = self.store.claim_batch(self.max_batch, worker=self.name, model=self.model, lease_s=self.lease_s)
            if not jobs:
                self._log_refused()
            return jobs
        except Exception:  # the database is unusable right now: log and retry later
            log.exception("cannot claim jobs")
            return []

    def _log_refused(self) -> None:
        """Say (at most once a minute) when queued jobs wait for a model this worker does not have."""
        if time.monotonic() - self._refused_logged < 60:
            return
        others = {m: n for m, n in self.store.queued_models().items() if m not in (self.model, "")}
        if others:
            self._refused_logged = time.monotonic()
            log.warning("not claiming %d queued job(s) checked against another model %s; this worker has %s",
                        sum(others.values()), sorted(others), self.model)

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
        """Run one claimed batch to the end (every job ends done or failed, unless its lease was lost)."""
        self.progress.begin([j.id for j in jobs])
        renewing = _LeaseRenewer(self.store, jobs[0].claim if jobs else None, self.lease_s).start()
        try:
            self._process(jobs)
        finally:
            renewing.stop()
            self.progress.end()

    def _finish_failed(self, job: Job, reason: str) -> None:
        if not self.store.mark_failed(job.id, reason, claim=job.claim):
            log.warning("job %s: lease lost, not marking it failed (%s)", job.id, reason, extra={"job_id": job.id})

    def _process(self, jobs: list[Job]) -> None:
        """The batch's stages: prepare each job's conditioning, sample them together, write
        each job's results (a job that fails a stage is marked failed with the reason)."""
        prepared = self._prepare(jobs)
        if not prepared:
            return
        sampled = self._sample(prepared)
        if sampled is not None:
            self._write_results(prepared, *sampled)

    def _prepare(self, jobs: list[Job]) -> list[_Prepared]:
        """Each job's received frame -> maps (FDS when its settings ask) and its first timings;
        a job whose frame cannot be read or decoded is marked failed and left out."""
        prepared = []
        for job in jobs:
            t0 = time.perf_counter()
            try:
                received = ReceivedFrame.FromString(self.store.read_frame(job.id))
                settings = TransmitSettings(**job.settings)
                maps = receiver_maps(received, fds=settings.fds, kernel=self.fds_kernel)
                appearance = received_appearance(received)
            except Exception as e:
                log.exception("job %s: cannot prepare the conditioning", job.id, extra={"job_id": job.id})
                self._finish_failed(job, f"cannot prepare the conditioning: {type(e).__name__}: {e}")
                continue
            timings = {
                # >= 0 by construction (claim_batch), clamped against a wall clock stepped back
                "queue_wait_s": round(max(0.0, job.started_at - job.created_at), 6) if job.started_at else None,
                "fds_s": time.perf_counter() - t0,
            }
            prepared.append(_Prepared(job, settings, maps, timings, appearance))
        return prepared

    def _sample(self, prepared: list[_Prepared]) -> tuple[np.ndarray, float] | None:
        """One sampling call for the whole batch: ``(uint8 images (B, H, W, 3), seconds)``, or
        ``None`` after marking every job failed when sampling raised."""
        cond = torch.stack([p.maps.conditioning for p in prepared])
        self.progress.sampling([p.job.id for p in prepared])
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                target = appearance_target([p.maps for p in prepared], [p.appearance for p in prepared],
                                           self.generator.space.num_classes)
                side = {} if target is None else {"appearance": target}  # the paper's setting: maps only
                images = self.generator.generate(cond, [sampling_settings(p.settings) for p in prepared],
                                                 progress=self.progress.step, **side)
            pixels = self.generator.to_uint8(images)
        except Exception as e:
            log.exception("sampling failed for jobs %s", [p.job.id for p in prepared])
            for p in prepared:
                self._finish_failed(p.job, f"sampling failed: {type(e).__name__}: {e}")
            return None
        return pixels, time.perf_counter() - t0

    def _write_results(self, prepared: list[_Prepared], pixels: np.ndarray, sampling_s: float) -> None:
        """Each job's PNGs and timings, then done (unless its lease was lost to another worker)."""
        self.progress.writing()
        for (job, _settings, maps, timings, _appearance), image in zip(prepared, pixels):
            try:
                t0 = time.perf_counter()
                self._write_pngs(job, maps, np.asarray(image))
                timings.update(
                    sampling_s=sampling_s,
                    png_s=time.perf_counter() - t0,
                    batch_size=len(prepared),
                    device=str(getattr(self.generator, "device", "cpu")),
                    mean_temperature=mean_temperature(self.generator),  # recorded with the job (JobResult.sampling)
                )
                timings["total_s"] = time.time() - job.created_at
                if not self.store.mark_done(job.id, _rounded(timings), claim=job.claim):
                    log.warning("job %s: lease lost before it finished; another worker owns it now, its results "
                                "stay", job.id, extra={"job_id": job.id})
                    continue
                self.on_done(timings)
                log.info("job %s done (batch of %d, sampling %.2f s)", job.id, len(prepared), sampling_s, extra={"job_id": job.id})
            except Exception as e:
                log.exception("job %s: cannot write the results", job.id, extra={"job_id": job.id})
                self._finish_failed(job, f"cannot write the results: {type(e).__name__}: {e}")

    def _write_pngs(self, job: Job, maps: ReceiverMaps, image: np.ndarray) -> None:
        """The three PNGs, into the folder of the job's claim (never over another worker's results)."""
        space = self.generator.space
        self.store.write_file(job.id, IMAGE_FILE, encode_png(image), claim=job.claim)
        for name, m in ((RECEIVED_FILE, maps.received), (DENOISED_FILE, maps.denoised)):
            label = label_from_maps(m, maps.class_ids)
            self.store.write_file(job.id, name, encode_png(colour_labels(label, space)), claim=job.claim)


class _LeaseRenewer:
    """Renews one claim's lease every ``lease_s / 3`` seconds on a side thread while a batch runs."""

    def __init__(self, store: BaseJobStore, claim: str | None, lease_s: float) -> None:
        self.store, self.claim, self.lease_s = store, claim, lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-renewer", daemon=True)

    def start(self) -> _LeaseRenewer:
        if self.claim is not None and self.lease_s > 0:
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                if self.store.renew(self.claim, self.lease_s) == 0:
                    log.warning("claim %s: lease lost (expired and requeued); its results will be discarded", self.claim)
                    return
            except Exception:  # the store is down: the lease may run out, the jobs are then requeued
                log.exception("cannot renew the lease of claim %s", self.claim)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


def _rounded(timings: dict) -> dict:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in timings.items()}
