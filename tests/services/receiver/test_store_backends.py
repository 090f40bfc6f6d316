"""The job store's interface on both backends (SQLite, Postgres): durability, leases, model keys,
concurrent claims; and the Postgres backend's errors (malformed URL, unreachable server, restart)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from receiver.store import IMAGE_FILE, JobStatus, StoreConfigError, StoreUnavailableError
from receiver.stores import open_store


def test_reopened_store_has_every_committed_job(any_store):
    url = getattr(any_store, "url", "")
    any_store.add("j1", b"frame", {"steps": 2}, {"total_bits": 1}, "k", model="m")
    any_store.close()
    reopened = open_store(url, any_store.data_dir, fsync=False)
    try:
        job = reopened.get("j1")
        assert job.status == JobStatus.QUEUED and job.settings == {"steps": 2} and job.model == "m"
        assert reopened.read_frame("j1") == b"frame"
        assert reopened.add("j1", b"frame", {"steps": 2}, {"total_bits": 1}, "k") is False  # a repeat
    finally:
        reopened.close()


def test_a_late_worker_cannot_overwrite_the_result_of_the_worker_that_took_over(any_store):
    store = any_store
    store.add("j", b"f", {}, {}, "k")
    [late] = store.claim_batch(1, worker="w1", lease_s=-1)  # w1 stalls: its lease is over at once
    assert store.requeue_expired(max_attempts=3) == (1, 0)
    [current] = store.claim_batch(1, worker="w2")
    assert current.claim != late.claim and current.attempts == 2
    store.write_file("j", IMAGE_FILE, b"w2's image", claim=current.claim)
    assert store.mark_done("j", {"total_s": 1.0}, claim=current.claim) is True
    # w1 wakes up: its files land in its own claim's folder, its row updates change nothing
    store.write_file("j", IMAGE_FILE, b"w1's image", claim=late.claim)
    assert store.mark_done("j", {"total_s": 9.0}, claim=late.claim) is False
    assert store.mark_failed("j", "w1 gave up", claim=late.claim) is False
    assert store.renew(late.claim) == 0
    job = store.get("j")
    assert job.status == JobStatus.DONE and job.worker == "w2" and job.timings == {"total_s": 1.0}
    assert store.result_path("j", IMAGE_FILE).read_bytes() == b"w2's image"


def test_a_renewed_lease_is_not_requeued(any_store):
    store = any_store
    store.add("j", b"f", {}, {}, "k")
    [job] = store.claim_batch(1, worker="w", lease_s=-1)
    assert store.renew(job.claim, lease_s=60) == 1
    assert store.requeue_expired(max_attempts=3) == (0, 0)
    assert store.get("j").status == JobStatus.RUNNING and store.get("j").lease_until > job.lease_until
    store.mark_done("j", {}, claim=job.claim)
    assert store.renew(job.claim) == 0  # finished: nothing left to renew


def test_a_worker_claims_only_jobs_of_its_model(any_store):
    store = any_store
    store.add("a1", b"f", {}, {}, "k", model="A")
    store.add("b1", b"f", {}, {}, "k", model="B")
    store.add("a2", b"f", {}, {}, "k", model="A")
    assert store.queued_models() == {"A": 2, "B": 1}
    assert [j.id for j in store.claim_batch(4, model="C")] == []  # another checkpoint: refuses every job
    assert [j.id for j in store.claim_batch(4, model="A")] == ["a1", "a2"]
    assert [j.id for j in store.claim_batch(4, model="A")] == []
    assert [j.id for j in store.claim_batch(4, model="B")] == ["b1"]


def test_concurrent_claims_from_several_connections_never_share_a_job(any_store):
    """Four store instances (connections) claim 120 jobs at once: each job once, one batch key per batch."""
    url = getattr(any_store, "url", "")
    for i in range(120):
        any_store.add(f"j{i:03d}", b"f", {}, {}, f"key{i % 3}", model="m")
    stores = [open_store(url, any_store.data_dir, fsync=False) for _ in range(4)]
    barrier = threading.Barrier(4)

    def drain(store):
        barrier.wait()
        batches = []
        while batch := store.claim_batch(5, worker=f"w{id(store)}", model="m"):
            batches.append(batch)
        return batches

    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(drain, stores))
    finally:
        for s in stores:
            s.close()
    batches = [b for r in results for b in r]
    ids = [j.id for b in batches for j in b]
    assert len(ids) == 120 and len(set(ids)) == 120
    assert all(len({j.batch_key for j in b}) == 1 for b in batches)
    assert any_store.counts()["running"] == 120


def test_malformed_and_foreign_store_urls_are_named_errors(tmp_path):
    with pytest.raises(StoreConfigError, match="malformed Postgres URL: port 'notaport'"):
        open_store("postgresql://user@host:notaport/db", tmp_path)
    with pytest.raises(StoreConfigError, match="malformed Postgres URL: .*nosuchoption"):
        open_store("postgresql://user@host/db?nosuchoption=1", tmp_path)
    with pytest.raises(StoreConfigError, match="postgresql:// URL; got a 'mysql' URL"):
        open_store("mysql://user@host/db", tmp_path)


def test_unreachable_postgres_is_unavailable_and_the_message_hides_the_password(tmp_path):
    url = f"postgresql://gesco:s3cret@/db?host={tmp_path}/no-server-here&connect_timeout=1"
    with pytest.raises(StoreUnavailableError, match="cannot reach the job store") as err:
        open_store(url, tmp_path / "data")
    assert "s3cret" not in str(err.value) and "no-server-here" in str(err.value)


def test_postgres_restart_is_unavailable_then_recovers(postgres, tmp_path):
    store = open_store(postgres.database(), tmp_path / "data", fsync=False)
    try:
        store.add("before", b"f", {}, {}, "k")
        postgres.stop("fast")
        with pytest.raises(StoreUnavailableError):
            store.add("during", b"f", {}, {}, "k")
        with pytest.raises(StoreUnavailableError):
            store.counts()
        postgres.start()
        assert store.add("during", b"f", {}, {}, "k") is True  # the next statement reconnects
        assert store.counts()["queued"] == 2
    finally:
        if not postgres.running():
            postgres.start()
        store.close()
