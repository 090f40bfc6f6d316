"""Fault injection against ``gesco up`` (real processes) and the store (issue 14).

* the channel SIGKILLed in the middle of a request (held after the receiver stored the
  job, in the budget-log write: the log is a FIFO the test controls): the client gets
  503, the job is whole at the receiver, ``gesco up`` restarts the channel, the sender
  reconnects at once, and the client's retry with the same id gets the stored job and
  exactly one budget line;
* the receiver SIGKILLed with 20 jobs queued: ``gesco up`` restarts it and all 20 finish,
  while the sender and the channel keep running.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow  # ~50 s: .ci/run runs the slow tests after the default suite

from conftest import wait_result
from svc_helpers import scene_files, service_env, spawn

from gesco_net.probes import free_port, grpc_health, wait_until


class FifoReader:
    """Reads the channel's budget log (a FIFO). :meth:`block` closes the read end: the channel's
    next ``open`` of the log then blocks (a FIFO without a reader) until :meth:`unblock`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self._buffer = b""
        self._want_open = threading.Event()
        self._want_open.set()
        self._is_closed = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        fd = None
        while not self._stop.is_set():
            if self._want_open.is_set() and fd is None:
                fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
                self._is_closed.clear()
            if fd is not None:
                try:
                    self._take(os.read(fd, 1 << 16))
                except BlockingIOError:
                    pass
                if not self._want_open.is_set():
                    os.close(fd)
                    fd = None
                    self._is_closed.set()
            time.sleep(0.01)
        if fd is not None:
            os.close(fd)

    def _take(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        self.lines.extend(line.decode() for line in lines if line)

    def block(self) -> None:
        self._want_open.clear()
        assert self._is_closed.wait(5)

    def unblock(self) -> None:
        self._want_open.set()

    def ids(self) -> list[str]:
        return [json.loads(line)["id"] for line in self.lines]

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)


def children(pid: int) -> dict[str, int]:
    """``{"receiver": pid, ...}`` of ``gesco up``'s child processes."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"-m" in cmd:
                out[cmd[cmd.index(b"-m") + 1].decode()] = int(child)
    return out


@pytest.fixture(scope="module")
def up(tmp_path_factory, tiny_checkpoint):
    tmp = tmp_path_factory.mktemp("faults")
    fifo = tmp / "budget.fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    ports = {name: free_port() for name in ("sender", "channel", "receiver", "receiver_grpc")}
    args = ["-m", "gesco_net.cli", "up", "--checkpoint", str(tiny_checkpoint), "--data-dir", str(tmp / "data"),
            "--budget-log", str(fifo),
            "--sender-port", str(ports["sender"]), "--channel-port", str(ports["channel"]),
            "--receiver-port", str(ports["receiver"]), "--receiver-grpc-port", str(ports["receiver_grpc"]),
            "--device", "cpu", "--batch-size", "4", "--no-segmenter", "--restart-backoff", "0.2"]
    env = service_env(GESCO_RECEIVER_TORCH_THREADS="1", GESCO_RECEIVER_LOG_LEVEL="WARNING",
                      GESCO_SENDER_LOG_LEVEL="WARNING", GESCO_CHANNEL_LOG_LEVEL="WARNING",
                      GESCO_SENDER_CHANNEL_TIMEOUT_S="60")
    log = tmp / "up.log"
    proc = spawn(args, env, log)
    try:
        wait_until(lambda: "all services are running" in log.read_text(), timeout=150, what="gesco up",
                   alive=lambda: proc.poll() is None)
    except Exception:
        proc.kill()
        reader.stop()
        raise AssertionError(log.read_text()[-3000:]) from None
    yield {"proc": proc, "log": log, "reader": reader, "ports": ports, "tmp": tmp,
           "sender": f"http://127.0.0.1:{ports['sender']}", "receiver": f"http://127.0.0.1:{ports['receiver']}"}
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.stop()


def post(url: str, files: dict[str, bytes], timeout: float = 60, **form) -> httpx.Response:
    data = {k: str(v) for k, v in {"steps": 1, **form}.items()}
    return httpx.post(url + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()}, data=data,
                      timeout=timeout)


def test_channel_killed_mid_request_then_the_retry_gets_the_stored_job(up):
    files = scene_files(seed=5)
    reader, sender, receiver = up["reader"], up["sender"], up["receiver"]
    assert post(sender, files, id="warm-up").status_code == 202  # the reader takes this line
    wait_until(lambda: "warm-up" in reader.ids(), timeout=10, what="budget line")
    reader.block()  # the next budget-log write blocks the channel, after the receiver stored the job
    reply: dict = {}
    t = threading.Thread(target=lambda: reply.setdefault("r", post(sender, files, id="mid-request", seed=3)))
    t.start()
    wait_until(lambda: httpx.get(f"{receiver}/result/mid-request", timeout=5).status_code == 200, timeout=30,
               what="job stored at the receiver")
    before = children(up["proc"].pid)
    os.kill(before["channel"], signal.SIGKILL)
    t.join(30)
    assert reply["r"].status_code == 503, reply["r"].text  # the client cannot know the job was stored
    doc = httpx.get(f"{receiver}/result/mid-request", timeout=5).json()
    assert doc["status"] in ("queued", "running", "done") and doc["budget"]["total_bits"] > 0  # whole, not half
    reader.unblock()
    channel = f"127.0.0.1:{up['ports']['channel']}"
    wait_until(lambda: children(up["proc"].pid).get("channel", before["channel"]) != before["channel"]
               and grpc_health(channel) == "SERVING", timeout=60, what="restarted channel")
    t0 = time.monotonic()
    while True:  # the sender reconnects within its reconnect backoff (0.5 s at most)
        retry = post(sender, files, id="mid-request", seed=3)
        if retry.status_code != 503 or time.monotonic() - t0 > 10:
            break
        time.sleep(0.05)
    reconnect_s = time.monotonic() - t0
    assert retry.status_code == 202 and retry.json()["id"] == "mid-request", retry.text
    assert reconnect_s < 2.0, f"the sender answered 503 for {reconnect_s:.1f} s after the channel came back"
    wait_until(lambda: "mid-request" in reader.ids(), timeout=10, what="budget line of the retry")
    assert reader.ids().count("mid-request") == 1
    assert wait_result(f"{receiver}/result/mid-request", timeout=60)["status"] == "done"
    after = children(up["proc"].pid)
    assert after["sender"] == before["sender"] and after["receiver"] == before["receiver"]
    assert "the channel exited (status -9); restarting it" in up["log"].read_text()


def test_receiver_killed_with_20_jobs_queued_all_finish_after_the_restart(up):
    files = scene_files(seed=6)
    sender, receiver = up["sender"], up["receiver"]
    ids = ["slow-0"] + [f"queued-{i}" for i in range(20)]
    r = post(sender, files, id=ids[0], steps=150, sampler="ddim")  # keeps the worker busy (~5 s)
    assert r.status_code == 202, r.text
    for i, job in enumerate(ids[1:]):
        r = post(sender, files, id=job, seed=i, sampler="ddim")
        assert r.status_code == 202, r.text
    jobs = httpx.get(f"{receiver}/healthz", timeout=5).json()["jobs"]
    assert jobs["queued"] >= 15, f"not mid-queue when killed: {jobs}"
    before = children(up["proc"].pid)
    os.kill(before["receiver"], signal.SIGKILL)
    for job in ids:
        doc = wait_result(f"{receiver}/result/{job}", timeout=180) if _up_again(receiver) else None
        assert doc is not None and doc["status"] == "done", (job, doc)
    after = children(up["proc"].pid)
    assert after["receiver"] != before["receiver"]
    assert after["sender"] == before["sender"] and after["channel"] == before["channel"]
    assert "the receiver exited (status -9); restarting it" in up["log"].read_text()


def _up_again(receiver: str) -> bool:
    def ok() -> bool:
        try:
            return httpx.get(f"{receiver}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ok, timeout=120, what="restarted receiver")
    return True
