"""Many receivers and workers on one Postgres job store (issue 23).

* two ``receiver-worker`` processes drain 200 jobs: each job done once, one batch key per batch;
* a worker SIGKILLed mid-batch: its jobs finish exactly once on the other worker after the lease;
* the channel spreads Deliver over two ingest replicas (round_robin) and, when one stops,
  every call is still served (retry on UNAVAILABLE);
* Postgres restarted under load: ingest answers OK or UNAVAILABLE, never stores half a job, recovers;
* a worker with a model of another resolution, or another checkpoint, refuses to claim;
* a malformed store URL / an unreachable Postgres stop the receiver with a named error.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
import torch
from frame_helpers import received_frame, store_job
from svc_helpers import make_tiny_checkpoint, service_env, spawn

from gesco.wire import ACK_ACCEPTED
from gesco_net import gesco_pb2_grpc
from gesco_net.probes import free_port, wait_until
from receiver.ingest import Ingest
from receiver.store import FRAME_FILE, IMAGE_FILE, JobStatus
from receiver.stores import open_store
from receiver.worker import Worker


def start_worker(name: str, url: str, data_dir: Path, checkpoint: Path, log: Path, lease_s: float = 30.0,
                 max_batch: int = 4) -> subprocess.Popen:
    """``python -m receiver --role worker`` on the shared store; returns once it has loaded its model."""
    env = service_env(GESCO_RECEIVER_ROLE="worker", GESCO_RECEIVER_STORE=url, GESCO_RECEIVER_DATA_DIR=str(data_dir),
                      GESCO_RECEIVER_CHECKPOINT=str(checkpoint), GESCO_RECEIVER_DEVICE="cpu",
                      GESCO_RECEIVER_TORCH_THREADS="1", GESCO_RECEIVER_MAX_BATCH=str(max_batch),
                      GESCO_RECEIVER_WORKER_NAME=name, GESCO_RECEIVER_LEASE_S=str(lease_s),
                      GESCO_RECEIVER_FSYNC="false", GESCO_RECEIVER_POLL_S="5")
    p = spawn(["-m", "receiver"], env, log)
    wait_until(lambda: f"receiver-worker {name}:" in log.read_text(), timeout=120, what=f"worker {name}",
               alive=lambda: p.poll() is None)
    return p


def wait_all_done(store, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        statuses = store.statuses()
        left = [i for i in ids if statuses.get(i) not in ("done", "failed")]
        if not left:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(left)} jobs not finished: {Counter(statuses.get(i) for i in left)}")
        time.sleep(0.2)


@contextlib.contextmanager
def stopping(*processes: subprocess.Popen):
    try:
        yield
    finally:
        for p in processes:
            if p.poll() is None:
                p.terminate()
        for p in processes:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_two_worker_processes_drain_200_jobs_each_once(postgres, tmp_path, tiny_checkpoint, tiny_generator):
    url, data = postgres.database(), tmp_path / "data"
    store = open_store(url, data, fsync=False)
    ingest = Ingest(store, tiny_generator)
    w1 = start_worker("w1", url, data, tiny_checkpoint, tmp_path / "w1.log")
    w2 = start_worker("w2", url, data, tiny_checkpoint, tmp_path / "w2.log")
    ids = [f"job{i:03d}" for i in range(200)]
    with stopping(w1, w2):
        for i, job_id in enumerate(ids):  # two batch keys, interleaved
            store_job(store, ingest, received_frame(job_id, seed=i, steps=1 + i % 2))
        wait_all_done(store, ids, timeout=300)
    jobs = [store.get(i) for i in ids]
    assert all(j.status == JobStatus.DONE and j.attempts == 1 for j in jobs), Counter((j.status, j.attempts) for j in jobs)
    assert {j.worker for j in jobs} == {"w1", "w2"}, "both workers should have claimed jobs"
    batches: dict[str, list] = {}
    for j in jobs:
        batches.setdefault(j.result, []).append(j)
    for batch in batches.values():
        assert len({j.batch_key for j in batch}) == 1 and len({j.worker for j in batch}) == 1
        assert len(batch) <= 4 and all(j.timings["batch_size"] == len(batch) for j in batch)
    for j in jobs:  # one results folder per job: no job was sampled twice
        assert [p.name for p in (data / "jobs" / j.id).glob("r-*")] == [f"r-{j.result}"]
    store.close()


@pytest.mark.slow
def test_a_sigkilled_workers_jobs_finish_exactly_once_on_the_other_after_the_lease(postgres, tmp_path, tiny_checkpoint,
                                                                                   tiny_generator):
    url, data = postgres.database(), tmp_path / "data"
    store = open_store(url, data, fsync=False)
    ingest = Ingest(store, tiny_generator)
    ids = [f"k{i}" for i in range(6)]
    for i, job_id in enumerate(ids):  # 150 steps: a second or more per batch of 4, time to kill it mid-batch
        store_job(store, ingest, received_frame(job_id, seed=i, steps=150))
    victim = start_worker("victim", url, data, tiny_checkpoint, tmp_path / "victim.log", lease_s=3)
    with stopping(victim):
        wait_until(lambda: store.counts()["running"] > 0, timeout=60, what="the victim's claim")
        victims = [j.id for j in store.recent(10) if j.status == JobStatus.RUNNING]
        victim.kill()  # SIGKILL mid-batch
        victim.wait(10)
    assert victims and all(store.get(i).status == JobStatus.RUNNING for i in victims)
    survivor = start_worker("survivor", url, data, tiny_checkpoint, tmp_path / "survivor.log", lease_s=3)
    with stopping(survivor):
        wait_all_done(store, ids, timeout=600)  # minutes on a loaded 2-core machine
    for job_id in ids:
        job = store.get(job_id)
        assert job.status == JobStatus.DONE and job.worker == "survivor", (job, (tmp_path / "survivor.log").read_text()[-2000:])
        assert job.attempts == (2 if job_id in victims else 1)
        folders = sorted(p.name for p in (data / "jobs" / job_id).glob("r-*"))
        assert folders == [f"r-{job.result}"], folders  # the victim wrote no result; the survivor one
        assert store.result_path(job_id, IMAGE_FILE).is_file()
    assert "expired leases: " in (tmp_path / "survivor.log").read_text()
    store.close()


def _receiver(url: str, data: Path, generator, role: str = "receiver", **settings):
    from receiver.service import ReceiverService
    from receiver.settings import ReceiverSettings

    settings = ReceiverSettings(port=free_port(), grpc_port=free_port(), data_dir=data, store=url, role=role,
                                device="cpu", fsync=False, log_level="WARNING", **settings)
    return ReceiverService(settings, generator=generator).start()


class CountingIngest:
    """Counts the Deliver calls a receiver replica served (wraps its handler)."""

    def __init__(self, service) -> None:
        self.calls = 0
        real = service.ingest._deliver  # the server holds the bound deliver(), which calls _deliver

        def deliver(received, context):
            self.calls += 1
            return real(received, context)

        service.ingest._deliver = deliver


def test_channel_round_robin_over_two_ingest_replicas_serves_every_call_when_one_stops(postgres, tmp_path,
                                                                                       tiny_generator):
    from frame_helpers import make_frame

    from channel.server import create_server
    from channel.settings import ChannelSettings

    url, data = postgres.database(), tmp_path / "data"
    replicas = [_receiver(url, data, tiny_generator) for _ in range(2)]
    counters = [CountingIngest(r) for r in replicas]
    target = "ipv4:" + ",".join(f"127.0.0.1:{r.grpc_port}" for r in replicas)
    channel = create_server(ChannelSettings(port=0, receiver_address=target, budget_log=tmp_path / "budget.jsonl"))
    channel.start()
    try:
        with grpc.insecure_channel(channel.address) as ch:
            stub = gesco_pb2_grpc.ChannelStub(ch)
            # round robin spreads calls over the READY replicas: on a loaded machine one connection can
            # become ready a call or two before the other, so count only once both have served a call
            warm = 0
            while min(c.calls for c in counters) == 0:
                assert warm < 40, f"one replica never got a call: {[c.calls for c in counters]}"
                assert stub.Transmit(make_frame(f"warm{warm}"), timeout=20).status == ACK_ACCEPTED
                warm += 1
            for c in counters:
                c.calls = 0
            for i in range(10):
                assert stub.Transmit(make_frame(f"rr{i}"), timeout=20).status == ACK_ACCEPTED
            assert [c.calls for c in counters] == [5, 5]  # round robin: alternating replicas
            replicas[0].stop(grace=0)
            for i in range(10, 20):  # every call served: the retry goes to the replica that is up
                assert stub.Transmit(make_frame(f"rr{i}"), timeout=20).status == ACK_ACCEPTED
        assert counters[1].calls >= 15
        store = replicas[1].store
        assert all(store.get(f"rr{i}").status == JobStatus.QUEUED for i in range(20))
    finally:
        channel.stop()
        replicas[1].stop(grace=0)


def test_postgres_restart_under_load_is_unavailable_never_half_stored_and_recovers(postgres, tmp_path, tiny_generator):
    receiver = _receiver(postgres.database(), tmp_path / "data", tiny_generator, max_queue=0)  # no queue bound
    codes: Counter = Counter()
    acked: list[str] = []
    stop = threading.Event()
    template = received_frame("template")

    def load():
        frame = type(template)()
        frame.CopyFrom(template)  # one frame per thread: its id changes per call
        with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as ch:
            stub = gesco_pb2_grpc.ReceiverStub(ch)
            i = 0
            while not stop.is_set():
                frame.header.id = f"load{threading.get_ident()}-{i}"
                i += 1
                try:
                    stub.Deliver(frame, timeout=10)
                    codes["OK"] += 1
                    acked.append(frame.header.id)
                except grpc.RpcError as e:
                    codes[e.code().name] += 1
                    assert e.code() == grpc.StatusCode.UNAVAILABLE, e.details()
                    assert "cannot store the job" in e.details()

    threads = [threading.Thread(target=load) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        before = codes["OK"]
        postgres.stop("fast")  # in-flight transactions are rolled back, connections closed
        time.sleep(1.0)
        postgres.start()
        wait_until(lambda: codes["OK"] > before + 20, timeout=30, what="ingest to recover after the restart")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        if not postgres.running():
            postgres.start()
    assert codes["UNAVAILABLE"] > 0 and set(codes) == {"OK", "UNAVAILABLE"}, codes
    store = receiver.store
    statuses = store.statuses()
    assert set(acked) <= set(statuses)  # every acknowledged job is stored ...
    for job_id in statuses:  # ... and every stored job has its frame
        assert store.path(job_id, FRAME_FILE).is_file(), job_id
    receiver.stop(grace=0)


def test_a_worker_with_another_resolution_or_checkpoint_refuses_to_claim(tmp_path, tiny_generator, caplog):
    from gesco.diffusion.pipeline import SemanticGenerator

    store = open_store("", tmp_path / "data", fsync=False)
    ingest = Ingest(store, tiny_generator)
    store_job(store, ingest, received_frame("mine", steps=1))
    wide = SemanticGenerator.load(make_tiny_checkpoint(tmp_path / "wide", resolution=(16, 32)), device="cpu")
    other = SemanticGenerator.load(make_tiny_checkpoint(tmp_path / "other"), device="cpu")
    with torch.no_grad():  # same architecture and resolution, other weights: another checkpoint
        next(other.model.parameters()).add_(1.0)
    for generator in (wide, other):
        worker = Worker(store, generator, poll_s=0.05)
        assert worker.model != ingest.model
        with caplog.at_level("WARNING", logger="gesco.receiver.worker"):
            assert worker.claim() == []
        assert "not claiming 1 queued job(s) checked against another model" in caplog.text
        caplog.clear()
        assert store.get("mine").status == JobStatus.QUEUED
    worker = Worker(store, tiny_generator)
    jobs = worker.claim()
    assert [j.id for j in jobs] == ["mine"]
    worker.process(jobs)
    assert store.get("mine").status == JobStatus.DONE
    store.close()


def test_receiver_refuses_to_start_with_a_malformed_or_unreachable_store(tmp_path, tiny_checkpoint, capsys):
    from receiver.__main__ import main

    base = ["--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--data-dir", str(tmp_path / "data")]
    assert main([*base, "--store", "mysql://db/jobs"]) == 2
    assert "cannot start: the job store must be empty" in capsys.readouterr().err
    assert main([*base, "--store", "postgresql://gesco@host:port/db"]) == 2
    assert "malformed Postgres URL: port 'port'" in capsys.readouterr().err
    assert main([*base, "--store", f"postgresql://gesco:pw@/db?host={tmp_path}/nothing&connect_timeout=1"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the job store" in err and ":pw@" not in err and "password" not in err
    assert main([*base, "--role", "worker", "--store", "postgresql://gesco@/db?host=/nonexistent"]) == 2
    assert "cannot reach the job store" in capsys.readouterr().err


def test_gesco_up_workers_and_store_make_a_receiver_and_n_worker_processes(tmp_path, tiny_checkpoint):
    from gesco_net.cli import build_parser
    from gesco_net.commands.up import services_for
    from receiver.store import StoreConfigError

    base = ["up", "--checkpoint", str(tiny_checkpoint), "--data-dir", str(tmp_path / "data")]
    url = "postgresql://gesco@127.0.0.1:5432/gesco"
    services = services_for(build_parser().parse_args([*base, "--store", url, "--workers", "2"]))
    names = [s.name for s in services]
    assert names == ["receiver", "receiver-worker-1", "receiver-worker-2", "channel", "sender"]
    env = {s.name: s.env for s in services}
    assert env["receiver"]["GESCO_RECEIVER_ROLE"] == "receiver"
    for i in (1, 2):
        w = env[f"receiver-worker-{i}"]
        assert w["GESCO_RECEIVER_ROLE"] == "worker" and w["GESCO_RECEIVER_STORE"] == url
        assert w["GESCO_RECEIVER_WORKER_NAME"] == f"worker-{i}"
        assert w["GESCO_RECEIVER_DATA_DIR"] == env["receiver"]["GESCO_RECEIVER_DATA_DIR"]
    plain = services_for(build_parser().parse_args(base))  # the default: one receiver that samples itself
    assert [s.name for s in plain] == ["receiver", "channel", "sender"] and "GESCO_RECEIVER_ROLE" not in plain[0].env
    with pytest.raises(StoreConfigError, match="malformed Postgres URL"):
        services_for(build_parser().parse_args([*base, "--store", "postgresql://h:99999/db"]))
