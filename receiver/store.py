"""The durable job store: one interface, two database backends, job files behind :mod:`receiver.blobs`.

* :class:`SqliteJobStore` (``receiver.store_sqlite``; also named ``receiver.stores.JobStore``): the
  default of ``gesco up``, a file ``jobs.sqlite3`` in the data directory;
* :class:`PostgresJobStore` (``receiver.store_postgres``): one Postgres database shared by
  any number of ``receiver`` replicas and ``receiver-worker`` processes.

:func:`receiver.stores.open_store` picks one from a URL (``GESCO_RECEIVER_STORE``). Both run the SQL of
:class:`BaseJobStore` below; they differ in how a transaction is opened, how rows of a
claim are locked and how idle workers are woken.

Life of a job: ``queued`` (stored, acknowledged) -> ``running`` (claimed by a worker,
under a lease) -> ``done`` or ``failed`` (with a reason). :meth:`BaseJobStore.add` writes
the frame file, then commits the row; only then does the gRPC ingest acknowledge, so an
accepted job survives a crash.

Leases: a claim marks a batch of jobs ``running`` with the worker's name, a fresh claim
token and ``lease_until``. The worker renews the lease while it samples
(:meth:`BaseJobStore.renew`). When a worker dies, its lease runs out and
:meth:`BaseJobStore.requeue_expired` (called by every worker before it claims) puts the
jobs back in the queue, or fails a job that has been tried ``max_attempts`` times (it may
be what kills the workers). :meth:`BaseJobStore.finish` only changes a job whose row still
carries the caller's claim token, and the results are read from the folder of the claim
that finished the job: a worker that comes back after its lease expired writes nothing
anyone reads. Lease times are the worker hosts' clocks (keep them in sync, NTP).
"""

from __future__ import annotations

import enum
import json
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gesco.errors import GescoError, GescoInputError
from gesco.wire.frames import FRAME_ID_PATTERN, check_frame_id
from receiver.blobs import FolderBlobs

#: ids the store accepts (they name a folder): those of every hop (gesco.wire.frames)
JOB_ID_PATTERN = FRAME_ID_PATTERN

FRAME_FILE = "frame.pb"
IMAGE_FILE = "image.png"
RECEIVED_FILE = "received.png"
DENOISED_FILE = "denoised.png"
RESULT_FILES = (IMAGE_FILE, RECEIVED_FILE, DENOISED_FILE)

#: seconds a claim holds its jobs unless renewed (``GESCO_RECEIVER_LEASE_S``)
DEFAULT_LEASE_S = 30.0

#: columns added to the first schema (a store made by an older gesco gets them on open)
LEASE_COLUMNS = {"owner": "TEXT", "model": "TEXT NOT NULL DEFAULT ''", "worker": "TEXT", "claim": "TEXT",
                 "lease_until": "DOUBLE PRECISION", "result": "TEXT"}


class JobStatus(str, enum.Enum):
    """Status of a job."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class DuplicateJobError(GescoInputError):
    """A job with this id exists already, with a different frame."""


class JobOwnerError(GescoError):
    """A job with this id exists already and belongs to another client (API-key identity)."""


class QueueFullError(Exception):
    """The store holds its maximum of unfinished jobs (gRPC RESOURCE_EXHAUSTED, HTTP 503)."""


class StoreConfigError(GescoError):
    """The store URL (``GESCO_RECEIVER_STORE``) is malformed or names an unknown database."""


class StoreUnavailableError(GescoError):
    """The database cannot be reached or failed mid-statement (gRPC UNAVAILABLE; retry later)."""


@dataclass
class Job:
    """One row of the store (times are Unix seconds)."""

    id: str
    status: JobStatus
    settings: dict[str, Any]
    budget: dict[str, Any]
    created_at: float
    batch_key: str = ""
    reason: str | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    upload: dict[str, Any] | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    owner: str | None = None  # identity of the API key that created it (None: created without keys)
    model: str = ""  # the model the ingest checked the frame against (receiver.generation.model_key)
    worker: str | None = None  # the worker holding (or last holding) the job
    claim: str | None = None  # token of the claim holding the job (a new one per claim)
    lease_until: float | None = None  # when that claim expires unless renewed
    result: str | None = None  # claim token whose results folder holds the PNGs (once done)


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` or raise :class:`PayloadError` when it cannot name a job folder."""
    return check_frame_id(job_id)


class Cursor(Protocol):
    """What the SQL of :class:`BaseJobStore` uses of a DB-API cursor."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Transaction(Protocol):
    """One open transaction: ``execute`` takes SQL with ``?`` placeholders (translated per backend)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...


class BaseJobStore(ABC):
    """The job store's operations, written once in SQL both SQLite and Postgres run.

    Subclasses provide :meth:`transaction` (a write transaction), :attr:`lock_rows` (the
    row-lock clause of a claim) and, optionally, :meth:`_announce` / :meth:`wait_for_jobs`
    (how an idle worker learns of a new job). Every method is safe to call from several threads.

    Args:
        blobs: where the job files go.
    """

    #: appended to a claim's SELECTs: Postgres ``FOR UPDATE SKIP LOCKED`` (SQLite locks the whole file)
    lock_rows: str = ""
    #: whether a failed commit may still have committed (a lost connection): then the frame file stays
    commit_may_survive_errors: bool = False
    #: short name for logs and /healthz
    backend: str = ""

    def __init__(self, blobs: FolderBlobs) -> None:
        self.blobs = blobs
        self.data_dir = blobs.root
        self.jobs_dir = blobs.jobs_dir
        self.fsync = blobs.fsync

    # ------------------------------------------------------------ backend
    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction that commits on success and rolls back on an exception.

        Raises:
            StoreUnavailableError: the database cannot be reached (Postgres).
        """

    @abstractmethod
    def close(self) -> None: ...

    def describe(self) -> str:
        """Where the rows are, without secrets (for logs and /readyz)."""
        return self.backend

    def _announce(self, tx: Transaction) -> None:
        """Called in the transaction that stores a new job (Postgres: NOTIFY the workers; SQLite: nothing,
        its idle workers in other processes poll)."""
        return None

    def wait_for_jobs(self, timeout: float, wake: threading.Event) -> None:
        """Block until a job may be queued: ``wake`` is set (this process queued one), another
        process announced one (Postgres LISTEN), or ``timeout`` seconds passed. Clears ``wake``."""
        wake.wait(timeout)
        wake.clear()

    # ------------------------------------------------------------ files
    def job_dir(self, job_id: str) -> Path:
        return self.blobs.job_dir(job_id)

    def path(self, job_id: str, name: str) -> Path:
        """Path of one of the job's own files (``FRAME_FILE``); results: :meth:`result_path`."""
        return self.blobs.path(job_id, name)

    def result_path(self, job_id: str, name: str) -> Path | None:
        """Path of a result PNG of a done job (in the folder of the claim that finished it),
        ``None`` when the job is unknown or not done."""
        job = self.get(job_id)
        if job is None or job.status != JobStatus.DONE:
            return None
        return self.blobs.path(job_id, name, claim=job.result)  # result None: a store from before leases

    def write_file(self, job_id: str, name: str, data: bytes, claim: str | None = None) -> Path:
        """Write atomically (temporary file, fsync, rename); ``claim``: into that claim's results folder."""
        return self.blobs.write(job_id, name, data, claim=claim)

    def read_frame(self, job_id: str) -> bytes:
        return self.blobs.read(job_id, FRAME_FILE)

    # ------------------------------------------------------------ rows
    def add(self, job_id: str, frame: bytes, settings: dict[str, Any], budget: dict[str, Any], batch_key: str,
            upload: dict[str, Any] | None = None, owner: str | None = None, max_queued: int = 0,
            model: str = "") -> bool:
        """Store a new queued job durably: the frame file first, then the row.

        ``upload`` (how the sender prepared the upload, :func:`gesco.link.upload_report`)
        is kept in the settings column under ``"upload"`` and comes back as :attr:`Job.upload`.

        Returns:
            ``True`` for a new job, ``False`` when the same id was stored with the same
            frame bytes before (a repeated delivery: nothing changes).
        Args:
            owner: identity of the client's API key (:func:`gesco_net.auth.key_identity`), if any.
            model: the model the frame was checked against; only workers with that model claim it.
        Raises:
            JobOwnerError: the id exists and belongs to another owner.
            DuplicateJobError: the id exists with another frame.
            QueueFullError: ``max_queued > 0`` jobs are queued or running already
                (checked after the duplicate check, so a repeated delivery still succeeds).
            PayloadError: an id that cannot name a folder.
            OSError, sqlite3.Error, StoreUnavailableError: the disk or the database failed (nothing is queued).
        """
        check_job_id(job_id)
        columns = json.dumps(_with_upload(settings, upload)), json.dumps(budget)
        with self._adding():
            existing = self._get_row(job_id)
            if existing is not None:
                return self._repeat(existing, frame, owner)
            if max_queued > 0:
                active = self.queued()
                if active >= max_queued:
                    raise QueueFullError(f"the receiver's queue is full ({active} unfinished jobs, limit {max_queued})")
            try:
                self.blobs.write(job_id, FRAME_FILE, frame)
            except BaseException:
                self.blobs.remove(job_id, FRAME_FILE)
                raise
            try:
                with self.transaction() as tx:
                    inserted = tx.execute(
                        "INSERT INTO jobs (id, status, batch_key, settings, budget, created_at, owner, model) "
                        "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                        (job_id, batch_key, *columns, time.time(), owner, model),
                    ).rowcount
                    if inserted:
                        self._announce(tx)
            except BaseException:
                if not self.commit_may_survive_errors:  # else the row may exist: it keeps its frame
                    self.blobs.remove(job_id, FRAME_FILE)
                raise
        if not inserted:  # another replica stored the same id between our check and insert
            return self._repeat(self._get_row(job_id), frame, owner)
        return True

    def _adding(self) -> AbstractContextManager[Any]:
        """Held around :meth:`add` (SQLite: the store's lock, so a claim never sees half of it)."""
        return _NO_LOCK

    def _repeat(self, row: Any, frame: bytes, owner: str | None) -> bool:
        if row["owner"] != owner:
            raise JobOwnerError(f"job {row['id']} exists already and belongs to another client")
        try:
            same = self.read_frame(row["id"]) == frame
        except OSError:
            same = False
        if same:
            return False
        raise DuplicateJobError(f"job {row['id']} exists already with a different frame")

    def get(self, job_id: str) -> Job | None:
        """The job, or ``None`` for an unknown (or unusable) id."""
        if not isinstance(job_id, str) or JOB_ID_PATTERN.fullmatch(job_id) is None:
            return None
        row = self._get_row(job_id)
        return None if row is None else _job(row)

    def _get_row(self, job_id: str) -> Any:
        with self.transaction() as tx:
            return tx.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()

    def claim_batch(self, max_batch: int, worker: str = "", model: str | None = None,
                    lease_s: float = DEFAULT_LEASE_S) -> list[Job]:
        """Mark up to ``max_batch`` queued jobs ``running`` under one new claim and return them.

        The oldest queued job decides the batch key; the batch takes the oldest queued
        jobs with that key (same sampler, steps, guidance scale), so they can be sampled
        in one call. Postgres skips rows another worker's claim has locked. Returns an
        empty list when nothing is queued.

        Args:
            worker: name of the claiming worker (shown in the row).
            model: claim only jobs checked against this model, or stored without a model key
                (``None``: any; a worker always passes its own, so it never samples a job
                the ingest checked against another checkpoint).
            lease_s: the claim expires this many seconds from now unless renewed.
        """
        where, params = "status = 'queued'", []
        if model is not None:  # '' : a job stored without a model key (a store from before them), any worker may take it
            where, params = "status = 'queued' AND model IN (?, '')", [model]
        claim = uuid.uuid4().hex
        with self.transaction() as tx:
            # the claim time is taken inside the transaction, after every add() that
            # committed before it: queue_wait_s = started_at - created_at is not negative
            now = time.time()
            first = tx.execute(f"SELECT batch_key FROM jobs WHERE {where} ORDER BY seq LIMIT 1{self.lock_rows}",
                               params).fetchone()
            if first is None:
                return []
            rows = tx.execute(f"SELECT * FROM jobs WHERE {where} AND batch_key = ? ORDER BY seq LIMIT ?{self.lock_rows}",
                              (*params, first["batch_key"], int(max_batch))).fetchall()
            for r in rows:
                tx.execute("UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1, worker = ?, "
                           "claim = ?, lease_until = ? WHERE id = ?", (now, worker, claim, now + lease_s, r["id"]))
        jobs = [_job(r) for r in rows]
        for j in jobs:
            j.status, j.started_at, j.attempts = JobStatus.RUNNING, now, j.attempts + 1
            j.worker, j.claim, j.lease_until = worker, claim, now + lease_s
        return jobs

    def renew(self, claim: str, lease_s: float = DEFAULT_LEASE_S) -> int:
        """Extend the lease of the claim's jobs that are still running under it; returns how many."""
        with self.transaction() as tx:
            return tx.execute("UPDATE jobs SET lease_until = ? WHERE claim = ? AND status = 'running'",
                              (time.time() + lease_s, claim)).rowcount

    def requeue_expired(self, max_attempts: int) -> tuple[int, int]:
        """Running jobs whose lease ran out go back to ``queued``.

        A job already tried ``max_attempts`` times is marked ``failed`` instead (it may be
        what kills the workers). Returns ``(requeued, failed)``.
        """
        with self.transaction() as tx:
            now = time.time()
            failed = tx.execute(
                "UPDATE jobs SET status = 'failed', finished_at = ?, claim = NULL, reason = ? "
                "WHERE status = 'running' AND lease_until < ? AND attempts >= ?",
                (now, f"processing was interrupted {max_attempts} times (its worker died or was killed)", now,
                 int(max_attempts)),
            ).rowcount
            requeued = tx.execute(
                "UPDATE jobs SET status = 'queued', started_at = NULL, claim = NULL, lease_until = NULL "
                "WHERE status = 'running' AND lease_until < ?", (now,),
            ).rowcount
        return requeued, failed

    def finish(self, job_id: str, status: JobStatus, claim: str | None = None, reason: str | None = None,
               timings: dict[str, Any] | None = None) -> bool:
        """End a job ``done`` (results in ``claim``'s folder) or ``failed`` (with ``reason``).

        With ``claim``, only while the job is still running under that claim: returns
        ``False`` (and changes nothing) when the lease expired and the job was requeued,
        claimed by another worker or finished by it.
        """
        sql = ("UPDATE jobs SET status = ?, reason = ?, timings = ?, finished_at = ?, result = ?, "
               "lease_until = NULL WHERE id = ?")
        params: list[Any] = [status.value, reason, json.dumps(timings or {}), time.time(),
                             claim if status == JobStatus.DONE else None, job_id]
        if claim is not None:
            sql += " AND claim = ? AND status = 'running'"
            params.append(claim)
        with self.transaction() as tx:
            return tx.execute(sql, params).rowcount == 1

    def mark_done(self, job_id: str, timings: dict[str, Any], claim: str | None = None) -> bool:
        return self.finish(job_id, JobStatus.DONE, claim=claim, timings=timings)

    def mark_failed(self, job_id: str, reason: str, timings: dict[str, Any] | None = None,
                    claim: str | None = None) -> bool:
        return self.finish(job_id, JobStatus.FAILED, claim=claim, reason=reason, timings=timings)

    def counts(self) -> dict[str, int]:
        """Number of jobs per status."""
        with self.transaction() as tx:
            rows = tx.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
        out = {s.value: 0 for s in JobStatus}
        out.update({r["status"]: int(r["n"]) for r in rows})
        return out

    def queued_models(self) -> dict[str, int]:
        """Queued jobs per model key (a worker says which it refuses to claim)."""
        with self.transaction() as tx:
            rows = tx.execute("SELECT model, COUNT(*) AS n FROM jobs WHERE status = 'queued' GROUP BY model").fetchall()
        return {r["model"]: int(r["n"]) for r in rows}

    def recent(self, limit: int = 50, before: str | None = None, owner: str | None = None,
               by_owner: bool = False) -> list[Job]:
        """The newest jobs first (at most ``limit``); ``before``: only jobs stored before that id.

        ``by_owner``: only the jobs of ``owner`` (an API-key identity; ``None``: jobs stored without a key).
        """
        where, params = "", []
        if by_owner:
            where, params = " AND owner IS NOT DISTINCT FROM ?", [owner]
        with self.transaction() as tx:
            if before is None:
                rows = tx.execute(f"SELECT * FROM jobs WHERE 1 = 1{where} ORDER BY seq DESC LIMIT ?",
                                  (*params, int(limit))).fetchall()
            else:
                rows = tx.execute(
                    f"SELECT * FROM jobs WHERE seq < (SELECT seq FROM jobs WHERE id = ?){where} ORDER BY seq DESC LIMIT ?",
                    (before, *params, int(limit)),
                ).fetchall()
        return [_job(r) for r in rows]

    def queued(self) -> int:
        """Number of jobs waiting (``queued``) or being processed (``running``)."""
        with self.transaction() as tx:
            row = tx.execute("SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running')").fetchone()
        return int(row["n"])

    def exists(self, job_id: str) -> bool:
        """Whether a job with this id is stored (any status)."""
        if not isinstance(job_id, str) or JOB_ID_PATTERN.fullmatch(job_id) is None:
            return False
        return self._get_row(job_id) is not None

    def statuses(self) -> dict[str, str]:
        """id -> status of every stored job (consistency checks)."""
        with self.transaction() as tx:
            return {r["id"]: r["status"] for r in tx.execute("SELECT id, status FROM jobs").fetchall()}

    def expire(self, max_jobs: int) -> list[str]:
        """Delete the oldest finished jobs (``done`` / ``failed``) beyond ``max_jobs`` stored jobs.

        Queued and running jobs are never expired (the receiver's queue bound limits
        them). The rows go first, then the folders, so a crash in between leaves at
        worst an orphaned folder, never a row without its files. Returns the expired ids.
        """
        if max_jobs <= 0:
            return []
        with self.transaction() as tx:
            total = int(tx.execute("SELECT COUNT(*) AS n FROM jobs").fetchone()["n"])
            excess = total - int(max_jobs)
            if excess <= 0:
                return []
            rows = tx.execute(
                "SELECT id FROM jobs WHERE status IN ('done', 'failed') ORDER BY COALESCE(finished_at, created_at), seq "
                f"LIMIT ?{self.lock_rows}",
                (excess,),
            ).fetchall()
            ids = [r["id"] for r in rows]
            for i in ids:
                tx.execute("DELETE FROM jobs WHERE id = ?", (i,))
        for i in ids:
            self.blobs.remove(i)
        return ids


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


def _with_upload(settings: dict[str, Any], upload: dict[str, Any] | None) -> dict[str, Any]:
    if "upload" in settings:
        raise ValueError("'upload' is not a transmission setting")
    return settings if upload is None else {**settings, "upload": upload}


def _job(row: Any) -> Job:
    settings = json.loads(row["settings"])
    upload = settings.pop("upload", None)
    return Job(
        id=row["id"],
        status=JobStatus(row["status"]),
        settings=settings,
        upload=upload,
        budget=json.loads(row["budget"]),
        created_at=row["created_at"],
        batch_key=row["batch_key"],
        reason=row["reason"],
        timings=json.loads(row["timings"] or "{}"),
        attempts=row["attempts"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        owner=row["owner"],
        model=row["model"] or "",
        worker=row["worker"],
        claim=row["claim"],
        lease_until=row["lease_until"],
        result=row["result"],
    )
