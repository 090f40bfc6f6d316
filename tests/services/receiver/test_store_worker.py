"""The receiver's job store and worker, without the network."""

from __future__ import annotations

import httpx
import pytest
from frame_helpers import received_frame, store_job
from svc_helpers import UvicornThread

from gesco.link import TransmitSettings
from gesco_net.probes import free_port
from receiver.app import create_app
from receiver.ingest import Ingest, batch_key
from receiver.store import DuplicateJobError, JobStatus
from receiver.stores import JobStore
from receiver.worker import Worker


@pytest.fixture()
def store(any_store):
    """The same tests on both backends (SQLite and Postgres, tests/services/conftest.py)."""
    return any_store


def test_add_is_durable_and_idempotent(tmp_path):
    store = JobStore(tmp_path / "data")
    assert store.add("j1", b"frame", {"steps": 2}, {"total_bits": 1}, "k") is True
    assert store.add("j1", b"frame", {"steps": 2}, {"total_bits": 1}, "k") is False
    with pytest.raises(DuplicateJobError):
        store.add("j1", b"other", {}, {}, "k")
    store.close()
    reopened = JobStore(tmp_path / "data")
    job = reopened.get("j1")
    assert job.status == JobStatus.QUEUED and job.settings == {"steps": 2}
    assert reopened.read_frame("j1") == b"frame"
    assert reopened.get("missing") is None and reopened.get("../x") is None
    reopened.close()


def test_claim_groups_compatible_jobs_in_order(store):
    for i, key in enumerate(["a", "b", "a", "a", "b", "a"]):
        store.add(f"j{i}", b"f", {}, {}, key)
    first = store.claim_batch(3)
    assert [j.id for j in first] == ["j0", "j2", "j3"] and all(j.status == JobStatus.RUNNING for j in first)
    assert [j.id for j in store.claim_batch(3)] == ["j1", "j4"]
    assert [j.id for j in store.claim_batch(3)] == ["j5"]
    assert store.claim_batch(3) == []
    assert store.counts() == {"queued": 0, "running": 6, "done": 0, "failed": 0}


def test_expired_leases_are_requeued_and_fail_after_max_attempts(store):
    store.add("a", b"f", {}, {}, "k")
    store.add("b", b"f", {}, {}, "k")
    [a] = store.claim_batch(1, worker="w1", lease_s=-1)  # a: attempt 1, its lease already over
    assert a.worker == "w1" and a.claim
    assert store.requeue_expired(max_attempts=3) == (1, 0)
    assert store.get("a").status == JobStatus.QUEUED and store.get("a").claim is None
    for _ in range(2):  # a: attempts 2 and 3, its worker dying each time
        assert [j.id for j in store.claim_batch(1, lease_s=-1)] == ["a"]
        store.requeue_expired(max_attempts=3)
    job = store.get("a")
    assert job.status == JobStatus.FAILED and "interrupted 3 times" in job.reason
    assert store.get("b").status == JobStatus.QUEUED


def test_worker_batches_compatible_jobs(store, tiny_generator):
    ingest = Ingest(store, tiny_generator)
    for i in range(4):
        store_job(store, ingest, received_frame(f"b{i}", seed=i))
    store_job(store, ingest, received_frame("other", steps=3))
    worker = Worker(store, tiny_generator, max_batch=4)
    worker.process(store.claim_batch(4))
    for i in range(4):
        job = store.get(f"b{i}")
        assert job.status == JobStatus.DONE and job.timings["batch_size"] == 4
        assert store.result_path(f"b{i}", "image.png").is_file()
    assert store.get("other").status == JobStatus.QUEUED
    worker.process(store.claim_batch(4))
    assert store.get("other").timings["batch_size"] == 1


def test_a_bad_job_fails_alone_and_sampling_errors_fail_the_batch(store, tiny_generator):
    ingest = Ingest(store, tiny_generator)
    for name in ("good", "broken"):
        store_job(store, ingest, received_frame(name))
    store.write_file("broken", "frame.pb", b"\xff\xff garbage")
    Worker(store, tiny_generator).process(store.claim_batch(4))
    assert store.get("good").status == JobStatus.DONE
    broken = store.get("broken")
    assert broken.status == JobStatus.FAILED and "cannot prepare" in broken.reason

    class ExplodingGenerator:  # test double: a generator whose sampling fails
        space, resolution, device = tiny_generator.space, tiny_generator.resolution, "cpu"

        def generate(self, cond, settings, progress=None):
            raise RuntimeError("out of memory")

    store_job(store, ingest, received_frame("doomed"))
    Worker(store, ExplodingGenerator()).process(store.claim_batch(4))
    doomed = store.get("doomed")
    assert doomed.status == JobStatus.FAILED and doomed.reason == "sampling failed: RuntimeError: out of memory"


def test_rest_shows_queued_and_failed_jobs(store, tiny_generator):
    ingest = Ingest(store, tiny_generator)
    store_job(store, ingest, received_frame("waiting"))
    port = free_port()
    with UvicornThread(create_app(store, {"device": "cpu"}, max_batch=2), port) as server:
        client = httpx.Client(base_url=server.url)
        doc = client.get("/result/waiting").json()
        assert doc["status"] == "queued" and doc["links"]["image"] is None and doc["reason"] is None
        assert doc["settings"] == TransmitSettings(steps=2).to_dict()
        r = client.get("/result/waiting/image.png")
        assert r.status_code == 409 and "queued" in r.json()["detail"]
        store.claim_batch(1)
        store.mark_failed("waiting", "sampling failed: boom")
        doc = client.get("/result/waiting").json()
        assert doc["status"] == "failed" and doc["reason"] == "sampling failed: boom"
        assert client.get("/result/missing").status_code == 404
        assert client.get("/healthz").json()["jobs"]["failed"] == 1


def test_batch_key_is_the_pipelines_grouping_key():
    """The store batches exactly the jobs the pipeline samples in one call: the ancestral
    sampler ignores steps (two ancestral jobs share a batch), the others do not."""
    a = TransmitSettings(sampler="ancestral", steps=10, seed=1)
    b = TransmitSettings(sampler="ancestral", steps=50, seed=2)
    assert batch_key(a) == batch_key(b)
    assert a.to_sampling().group_key() == b.to_sampling().group_key()
    c = TransmitSettings(sampler="respaced", steps=10)
    d = TransmitSettings(sampler="respaced", steps=50)
    assert batch_key(c) != batch_key(d)
    assert batch_key(c) != batch_key(TransmitSettings(sampler="respaced", steps=10, guidance_scale=1.5))
    assert batch_key(c) == batch_key(TransmitSettings(sampler="respaced", steps=10, seed=99, psnr_db=1))
