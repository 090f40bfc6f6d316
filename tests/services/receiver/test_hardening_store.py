"""Receiver store limits and invariants (issue 14): queue bound, stored-job cap, queue_wait_s >= 0."""

from __future__ import annotations

import threading
import time

import pytest

from receiver.store import JobStatus, QueueFullError
from receiver.stores import JobStore


@pytest.fixture()
def store(any_store):
    """The same tests on both backends (SQLite and Postgres, tests/services/conftest.py)."""
    return any_store


def test_claim_time_is_never_before_a_job_stored_while_the_claim_waited(store):
    """The old claim read the clock before taking the lock: a job added meanwhile got a negative wait."""
    claimed = []
    with store._lock:  # an add() in progress holds the lock
        t = threading.Thread(target=lambda: claimed.extend(store.claim_batch(4)))
        t.start()
        time.sleep(0.3)  # the claim is waiting for the lock
        store.add("late", b"f", {}, {}, "k")
    t.join(10)
    jobs = claimed or store.claim_batch(4)
    assert [j.id for j in jobs] == ["late"]
    assert jobs[0].started_at >= jobs[0].created_at


def test_queue_bound_refuses_new_jobs_but_not_repeats(store):
    for i in range(3):
        store.add(f"j{i}", b"f%d" % i, {}, {}, "k", max_queued=3)
    with pytest.raises(QueueFullError, match="queue is full"):
        store.add("j3", b"f3", {}, {}, "k", max_queued=3)
    assert store.get("j3") is None and not (store.jobs_dir / "j3").exists()
    assert store.add("j0", b"f0", {}, {}, "k", max_queued=3) is False  # a repeated delivery still succeeds
    store.mark_done("j0", {})
    assert store.add("j3", b"f3", {}, {}, "k", max_queued=3) is True  # a finished job frees a place


def test_expire_drops_oldest_finished_jobs_with_their_files(store):
    for i in range(6):
        store.add(f"j{i}", b"f", {}, {}, "k")
    for i in range(4):
        store.claim_batch(1)
        store.write_file(f"j{i}", "image.png", b"png")
        store.mark_done(f"j{i}", {}) if i != 1 else store.mark_failed(f"j{i}", "boom")
        time.sleep(0.01)
    assert store.expire(0) == []  # 0 = keep all
    expired = store.expire(3)
    assert expired == ["j0", "j1", "j2"]
    for i in range(3):
        assert store.get(f"j{i}") is None and not (store.jobs_dir / f"j{i}").exists()
    assert store.get("j3").status == JobStatus.DONE
    # only queued jobs left beyond the cap: they are never expired
    assert store.expire(1) == ["j3"]
    assert store.expire(1) == [] and store.counts()["queued"] == 2


def test_worker_keeps_at_most_max_stored_jobs(tmp_path, tiny_generator):
    from frame_helpers import received_frame, store_job

    from receiver.ingest import Ingest
    from receiver.worker import Worker

    store = JobStore(tmp_path / "data", fsync=False)
    worker = Worker(store, tiny_generator, max_batch=2, poll_s=0.05, max_stored_jobs=2)
    ingest = Ingest(store, tiny_generator)
    for i in range(5):
        store_job(store, ingest, received_frame(f"cap{i}", seed=i, steps=1))
    worker.start()
    deadline = time.monotonic() + 60
    while store.counts()["queued"] + store.counts()["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.stop(timeout=30)
    worker.expire()
    counts = store.counts()
    assert counts["queued"] == counts["running"] == 0 and sum(counts.values()) == 2, counts
    assert sorted(p.name for p in store.jobs_dir.iterdir()) == ["cap3", "cap4"]
    store.close()
