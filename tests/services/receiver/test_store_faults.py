"""Store faults (issue 14): a full disk and a locked SQLite file give a clear error and a consistent store."""

from __future__ import annotations

import errno
import sqlite3
import time

import grpc
import pytest
from frame_helpers import deliver, received_frame

from gesco.wire import ACK_ACCEPTED
from receiver.ingest import Ingest
from receiver.store import FRAME_FILE, IMAGE_FILE, JobStatus
from receiver.stores import JobStore
from receiver.worker import Worker


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def consistent(store: JobStore) -> None:
    """Every row has its frame file, every finished-done job its image; no temporary files remain."""
    statuses = store.statuses()
    for job_id, status in statuses.items():
        assert store.path(job_id, FRAME_FILE).is_file(), job_id
        if status == JobStatus.DONE.value:
            assert store.result_path(job_id, IMAGE_FILE).is_file(), job_id
    assert not list(store.jobs_dir.glob("*/.*.tmp")) and not list(store.jobs_dir.glob("*/*/.*.tmp"))
    ids = set(statuses)
    assert {p.name for p in store.jobs_dir.iterdir() if (p / FRAME_FILE).exists()} <= ids


def test_disk_full_when_storing_a_frame_is_unavailable_and_nothing_is_stored(stack, monkeypatch):
    store = stack.receiver.store
    real_open = open

    def full_disk_open(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).endswith(".tmp"):
            f = real_open(path, mode, *args, **kwargs)
            f.write = enospc  # the write fails as on a full disk
            return f
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_disk_open)
    rx = received_frame("disk-full")
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, rx)
    monkeypatch.undo()
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "No space left on device" in err.value.details() and "cannot store the job" in err.value.details()
    assert store.get("disk-full") is None and not (store.jobs_dir / "disk-full").exists()
    consistent(store)
    assert deliver(stack, rx).status == ACK_ACCEPTED  # space again: accepted


def test_disk_full_when_writing_results_fails_the_job_with_the_reason(tmp_path, tiny_generator, monkeypatch):
    store = JobStore(tmp_path / "data", fsync=False)
    ingest = Ingest(store, tiny_generator)
    rx = received_frame("results-disk-full", steps=1)
    settings = ingest.check(rx)
    from frame_helpers import store_job

    store_job(store, ingest, rx)
    worker = Worker(store, tiny_generator, max_batch=1)
    real = store.write_file
    monkeypatch.setattr(store, "write_file", lambda job_id, name, data, claim=None: enospc() if name == IMAGE_FILE
                        else real(job_id, name, data, claim))
    worker.process(store.claim_batch(1))
    job = store.get("results-disk-full")
    assert job.status == JobStatus.FAILED and "No space left on device" in job.reason
    consistent(store)
    assert settings.steps == 1
    store.close()


def test_locked_database_is_unavailable_then_works_again(tmp_path, tiny_generator):
    store = JobStore(tmp_path / "data", fsync=False, busy_timeout_s=0.5)
    ingest = Ingest(store, tiny_generator)
    other = sqlite3.connect(tmp_path / "data" / "jobs.sqlite3", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the database

    class Context:
        def abort(self, code, details):
            raise RuntimeError((code, details))

    rx = received_frame("locked-db", steps=1)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError) as err:
        ingest.deliver(rx, Context())
    code, details = err.value.args[0]
    assert code == grpc.StatusCode.UNAVAILABLE and "locked" in details
    assert time.monotonic() - t0 < 5
    assert not (store.jobs_dir / "locked-db").exists()  # the frame file (and its folder) removed again
    other.execute("ROLLBACK")
    other.close()
    assert ingest.deliver(rx, Context()).message == "stored"
    consistent(store)
    store.close()
