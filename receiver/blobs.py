"""Where the receiver keeps a job's bytes: the frame as delivered and the result PNGs.

:class:`FolderBlobs` is the one implementation: files under ``<root>/jobs/<id>/``, written
atomically (a temporary file with a unique name, fsync, rename). Every replica of the
``receiver`` role and every ``receiver-worker`` must see the same folder: a local disk for
``gesco up``, a shared volume for ``docker compose`` on one host. A deployment over several
hosts needs a store every host reaches (S3-compatible object storage, whose single-object
PUT is atomic like the rename here); docs/services.md says why a network file system is
the weaker choice.

Layout::

    jobs/<id>/frame.pb                 the ReceivedFrame as delivered (written before the job's row)
    jobs/<id>/r-<claim>/image.png      the generated image, written by the worker holding claim <claim>
    jobs/<id>/r-<claim>/received.png   received maps, colour-coded
    jobs/<id>/r-<claim>/denoised.png   maps after FDS, colour-coded

Results go to a folder named by the worker's claim token, so a worker that lost its lease
(:mod:`receiver.store`) writes beside, never over, the results of the worker that finished
the job; the job's row names the folder that counts.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from gesco.wire.frames import check_frame_id


def result_folder(claim: str) -> str:
    """Name of the results folder of one claim (a hex token)."""
    return f"r-{claim}"


class FolderBlobs:
    """Job files on a folder (local or a shared volume).

    Args:
        root: the data directory; files go under ``root/jobs``.
        fsync: fsync each file and its folder (durable against power loss).
    """

    def __init__(self, root: str | Path, fsync: bool = True) -> None:
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync

    def job_dir(self, job_id: str) -> Path:
        """The folder of one job (``PayloadError`` for an id that cannot name a folder)."""
        return self.jobs_dir / check_frame_id(job_id)

    def path(self, job_id: str, name: str, claim: str | None = None) -> Path:
        """Path of one file of a job; ``claim``: in that claim's results folder."""
        folder = self.job_dir(job_id)
        return folder / result_folder(claim) / name if claim else folder / name

    def write(self, job_id: str, name: str, data: bytes, claim: str | None = None) -> Path:
        """Write atomically: a uniquely named temporary file, fsync, rename (two writers never share it)."""
        target = self.path(job_id, name, claim)
        folder = target.parent
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.{uuid.uuid4().hex[:12]}.tmp"
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

    def read(self, job_id: str, name: str) -> bytes:
        return self.path(job_id, name).read_bytes()

    def remove(self, job_id: str, name: str | None = None) -> None:
        """Delete one file of a job (``name``), or its whole folder; a missing one is no error.

        Removing one file also removes the job's folder when that leaves it empty."""
        if name is None:
            shutil.rmtree(self.jobs_dir / job_id, ignore_errors=True)
            return
        self.path(job_id, name).unlink(missing_ok=True)
        try:
            self.job_dir(job_id).rmdir()
        except OSError:  # not empty (another file), or gone
            pass
