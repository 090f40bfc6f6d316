"""The durable job store: SQLite (WAL) for the job rows, files for the frames and images.

Layout of the data directory::

    jobs.sqlite3                 one row per job (status, settings, budget, timings)
    jobs/<id>/frame.pb           the ReceivedFrame as delivered (written before the row)
    jobs/<id>/image.png          the generated image            (when done)
    jobs/<id>/received.png       received maps, colour-coded    (when done)
    jobs/<id>/denoised.png       maps after FDS, colour-coded   (when done)

Life of a job: ``queued`` (stored, acknowledged) -> ``running`` (claimed by the worker)
-> ``done`` or ``failed`` (with a reason). :meth:`JobStore.add` writes and fsyncs the
frame file, then commits the row; only then does the gRPC ingest acknowledge, so an
accepted job survives a crash. :meth:`JobStore.recover` (at start-up) puts jobs that a
crash left ``running`` back in the queue.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gesco.errors import GescoError, GescoInputError
from gesco.wire.frames import FRAME_ID_PATTERN, check_frame_id

#: ids the store accepts (they name a folder): those of every hop (gesco.wire.frames)
JOB_ID_PATTERN = FRAME_ID_PATTERN

FRAME_FILE = "frame.pb"
IMAGE_FILE = "image.png"
RECEIVED_FILE = "received.png"
DENOISED_FILE = "denoised.png"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    reason      TEXT,
    batch_key   TEXT NOT NULL,
    settings    TEXT NOT NULL,
    budget      TEXT NOT NULL,
    timings     TEXT NOT NULL DEFAULT '{}',
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    owner       TEXT
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, batch_key, seq);
"""


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


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` or raise :class:`PayloadError` when it cannot name a job folder."""
    return check_frame_id(job_id)


class JobStore:
    """SQLite + files; every method is safe to call from several threads.

    Args:
        data_dir: the data directory (created).
        fsync: fsync files and use ``synchronous=FULL`` (durable against power loss);
            ``False`` is faster and still safe against a crash of the process.
        busy_timeout_s: how long a statement waits for a lock another process holds on
            the database before ``sqlite3.OperationalError: database is locked``.
    """

    def __init__(self, data_dir: str | Path, fsync: bool = True, busy_timeout_s: float = 5.0) -> None:
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.data_dir / "jobs.sqlite3", isolation_level=None, check_same_thread=False,
                                   timeout=busy_timeout_s)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.executescript(_SCHEMA)
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(jobs)")}
        if "owner" not in columns:  # a store made before API keys existed
            self._db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ files
    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / check_job_id(job_id)

    def path(self, job_id: str, name: str) -> Path:
        """Path of one of the job's files (``FRAME_FILE``, ``IMAGE_FILE``, ...)."""
        return self.job_dir(job_id) / name

    def write_file(self, job_id: str, name: str, data: bytes) -> Path:
        """Write atomically (temporary file, fsync, rename)."""
        folder = self.job_dir(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        tmp = folder / f".{name}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:  # a full disk, say: leave no partial file behind
            tmp.unlink(missing_ok=True)
            raise
        if self.fsync:
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return target

    def read_frame(self, job_id: str) -> bytes:
        return self.path(job_id, FRAME_FILE).read_bytes()

    # ------------------------------------------------------------------ rows
    def add(self, job_id: str, frame: bytes, settings: dict[str, Any], budget: dict[str, Any], batch_key: str,
            upload: dict[str, Any] | None = None, owner: str | None = None, max_queued: int = 0) -> bool:
        """Store a new queued job durably: the frame file first, then the row.

        ``upload`` (how the sender prepared the upload, :func:`gesco.link.upload_report`)
        is kept in the settings column under ``"upload"`` and comes back as :attr:`Job.upload`.

        Returns:
            ``True`` for a new job, ``False`` when the same id was stored with the same
            frame bytes before (a repeated delivery: nothing changes).
        Args:
            owner: identity of the client's API key (:func:`gesco.serving.auth.key_identity`), if any.
        Raises:
            JobOwnerError: the id exists and belongs to another owner.
            DuplicateJobError: the id exists with another frame.
            QueueFullError: ``max_queued > 0`` jobs are queued or running already
                (checked after the duplicate check, so a repeated delivery still succeeds).
            PayloadError: an id that cannot name a folder.
            OSError, sqlite3.Error: the disk or the database failed (nothing is queued).
        """
        check_job_id(job_id)
        with self._lock:
            row = self._row(job_id)
            if row is not None:
                if row["owner"] != owner:
                    raise JobOwnerError(f"job {job_id} exists already and belongs to another client")
                try:
                    same = self.read_frame(job_id) == frame
                except OSError:
                    same = False
                if same:
                    return False
                raise DuplicateJobError(f"job {job_id} exists already with a different frame")
            if max_queued > 0:
                active = self.queued()
                if active >= max_queued:
                    raise QueueFullError(f"the receiver's queue is full ({active} unfinished jobs, limit {max_queued})")
            try:
                self.write_file(job_id, FRAME_FILE, frame)
            except BaseException:
                _remove_if_empty(self.job_dir(job_id))
                raise
            try:
                self._db.execute(
                    "INSERT INTO jobs (id, status, batch_key, settings, budget, created_at, owner) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (job_id, JobStatus.QUEUED.value, batch_key, json.dumps(_with_upload(settings, upload)),
                     json.dumps(budget), time.time(), owner),
                )
            except BaseException:
                self.path(job_id, FRAME_FILE).unlink(missing_ok=True)
                _remove_if_empty(self.job_dir(job_id))
                raise
        return True

    def get(self, job_id: str) -> Job | None:
        """The job, or ``None`` for an unknown (or unusable) id."""
        if not isinstance(job_id, str) or JOB_ID_PATTERN.fullmatch(job_id) is None:
            return None
        with self._lock:
            row = self._row(job_id)
        return None if row is None else _job(row)

    def claim_batch(self, max_batch: int) -> list[Job]:
        """Mark up to ``max_batch`` queued jobs ``running`` and return them.

        The oldest queued job decides the batch key; the batch takes the oldest queued
        jobs with that key (same sampler, steps, guidance scale), so they can be sampled
        in one call. Returns an empty list when nothing is queued.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            # the claim time is taken inside the transaction, after every add() that
            # committed before it: queue_wait_s = started_at - created_at is never negative
            now = time.time()
            try:
                first = self._db.execute(
                    "SELECT batch_key FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1"
                ).fetchone()
                if first is None:
                    self._db.execute("COMMIT")
                    return []
                rows = self._db.execute(
                    "SELECT * FROM jobs WHERE status = 'queued' AND batch_key = ? ORDER BY seq LIMIT ?",
                    (first["batch_key"], int(max_batch)),
                ).fetchall()
                ids = [r["id"] for r in rows]
                self._db.executemany(
                    "UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1 WHERE id = ?",
                    [(now, i) for i in ids],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        jobs = [_job(r) for r in rows]
        for j in jobs:
            j.status, j.started_at, j.attempts = JobStatus.RUNNING, now, j.attempts + 1
        return jobs

    def mark_done(self, job_id: str, timings: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = 'done', reason = NULL, timings = ?, finished_at = ? WHERE id = ?",
                (json.dumps(timings), time.time(), job_id),
            )

    def mark_failed(self, job_id: str, reason: str, timings: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = 'failed', reason = ?, timings = ?, finished_at = ? WHERE id = ?",
                (reason, json.dumps(timings or {}), time.time(), job_id),
            )

    def recover(self, max_attempts: int) -> tuple[int, int]:
        """After a crash: jobs left ``running`` go back to ``queued``.

        A job already tried ``max_attempts`` times is marked ``failed`` instead (it may be
        what crashes the process). Returns ``(requeued, failed)``.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                failed = self._db.execute(
                    "UPDATE jobs SET status = 'failed', finished_at = ?, reason = ? "
                    "WHERE status = 'running' AND attempts >= ?",
                    (time.time(), f"processing was interrupted {max_attempts} times (receiver crashed or was killed)",
                     int(max_attempts)),
                ).rowcount
                requeued = self._db.execute(
                    "UPDATE jobs SET status = 'queued', started_at = NULL WHERE status = 'running'"
                ).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return requeued, failed

    def counts(self) -> dict[str, int]:
        """Number of jobs per status."""
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
        out = {s.value: 0 for s in JobStatus}
        out.update({r["status"]: int(r["n"]) for r in rows})
        return out

    def recent(self, limit: int = 50, before: str | None = None, owner: str | None = None,
               by_owner: bool = False) -> list[Job]:
        """The newest jobs first (at most ``limit``); ``before``: only jobs stored before that id.

        ``by_owner``: only the jobs of ``owner`` (an API-key identity; ``None``: jobs stored without a key).
        """
        where, params = "", []
        if by_owner:
            where, params = " AND owner IS ?", [owner]
        with self._lock:
            if before is None:
                rows = self._db.execute(f"SELECT * FROM jobs WHERE 1 = 1{where} ORDER BY seq DESC LIMIT ?",
                                        (*params, int(limit))).fetchall()
            else:
                rows = self._db.execute(
                    f"SELECT * FROM jobs WHERE seq < (SELECT seq FROM jobs WHERE id = ?){where} ORDER BY seq DESC LIMIT ?",
                    (before, *params, int(limit)),
                ).fetchall()
        return [_job(r) for r in rows]

    def queued(self) -> int:
        """Number of jobs waiting (``queued``) or being processed (``running``)."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running')").fetchone()
        return int(row["n"])

    def exists(self, job_id: str) -> bool:
        """Whether a job with this id is stored (any status)."""
        if not isinstance(job_id, str) or JOB_ID_PATTERN.fullmatch(job_id) is None:
            return False
        with self._lock:
            return self._row(job_id) is not None

    def expire(self, max_jobs: int) -> list[str]:
        """Delete the oldest finished jobs (``done`` / ``failed``) beyond ``max_jobs`` stored jobs.

        Queued and running jobs are never expired (the receiver's queue bound limits
        them). The rows go first, then the folders, so a crash in between leaves at
        worst an orphaned folder, never a row without its files. Returns the expired ids.
        """
        if max_jobs <= 0:
            return []
        with self._lock:
            total = int(self._db.execute("SELECT COUNT(*) AS n FROM jobs").fetchone()["n"])
            excess = total - int(max_jobs)
            if excess <= 0:
                return []
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE status IN ('done', 'failed') ORDER BY COALESCE(finished_at, created_at), seq "
                "LIMIT ?",
                (excess,),
            ).fetchall()
            ids = [r["id"] for r in rows]
            self._db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
        for i in ids:
            shutil.rmtree(self.jobs_dir / i, ignore_errors=True)
        return ids

    def _row(self, job_id: str) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()


def _with_upload(settings: dict[str, Any], upload: dict[str, Any] | None) -> dict[str, Any]:
    if "upload" in settings:
        raise ValueError("'upload' is not a transmission setting")
    return settings if upload is None else {**settings, "upload": upload}


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (another file), or gone
        pass


def _job(row: sqlite3.Row) -> Job:
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
    )
