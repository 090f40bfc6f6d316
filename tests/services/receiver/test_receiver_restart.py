"""A receiver killed mid-queue (SIGKILL) loses nothing it accepted: after a restart every job completes
(the killed worker's running job once its lease, 2 s here, has expired)."""

from __future__ import annotations

import grpc
import httpx
from conftest import wait_result
from frame_helpers import received_frame
from svc_helpers import service_env, spawn

from gesco.wire import ACK_ACCEPTED
from gesco_net import gesco_pb2_grpc
from gesco_net.probes import free_port, grpc_health, http_ok, wait_until


def start_receiver(env: dict[str, str], log, rest: int, grpc_port: int):
    p = spawn(["-m", "receiver"], env, log)
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{rest}/healthz") and grpc_health(f"127.0.0.1:{grpc_port}") == "SERVING",
        timeout=120, what="receiver", alive=lambda: p.poll() is None,
    )
    return p


def test_sigkill_mid_queue_then_restart_completes_every_job(tmp_path, tiny_checkpoint):
    rest, grpc_port = free_port(), free_port()
    env = service_env(
        GESCO_RECEIVER_PORT=str(rest), GESCO_RECEIVER_GRPC_PORT=str(grpc_port),
        GESCO_RECEIVER_DATA_DIR=str(tmp_path / "data"), GESCO_RECEIVER_CHECKPOINT=str(tiny_checkpoint),
        GESCO_RECEIVER_DEVICE="cpu", GESCO_RECEIVER_MAX_BATCH="1", GESCO_RECEIVER_TORCH_THREADS="1",
        GESCO_RECEIVER_LOG_LEVEL="WARNING", GESCO_RECEIVER_LEASE_S="2",
    )
    log = tmp_path / "receiver.log"
    p = start_receiver(env, log, rest, grpc_port)
    try:
        # a slow first job (40 sampling steps) keeps the worker busy while the others queue behind it
        frames = [received_frame("slow", steps=40)] + [received_frame(f"quick{i}", seed=i) for i in range(3)]
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
            stub = gesco_pb2_grpc.ReceiverStub(ch)
            for f in frames:
                assert stub.Deliver(f, timeout=10).status == ACK_ACCEPTED
        jobs = httpx.get(f"http://127.0.0.1:{rest}/healthz").json()["jobs"]
        assert jobs["queued"] >= 1 and jobs["done"] < 4, f"not mid-queue when killed: {jobs}"
        p.kill()  # SIGKILL: no chance to clean up
        p.wait(10)

        p = start_receiver(env, log, rest, grpc_port)
        for f in frames:
            doc = wait_result(f"http://127.0.0.1:{rest}/result/{f.header.id}", timeout=120)
            assert doc["status"] == "done", (doc, log.read_text()[-2000:])
            assert httpx.get(doc["links"]["image"]).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{rest}/result/slow").json()["attempts"] >= 1
    finally:
        p.terminate()
        assert p.wait(30) == 0, log.read_text()[-2000:]  # clean shutdown on SIGTERM
