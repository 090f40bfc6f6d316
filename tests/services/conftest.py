"""Fixtures of the service tests: the tiny checkpoint and the three services in-process.

``stack`` runs the real receiver (gRPC + REST), the real channel and the real sender on
free loopback ports, on threads of the test process (real HTTP, real gRPC). The
end-to-end test (test_e2e.py) starts them as separate processes instead.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from svc_helpers import TINY_RESOLUTION, UvicornThread, make_tiny_checkpoint

from gesco_net.probes import free_port


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="session")
def tiny_generator(tiny_checkpoint):
    from gesco.diffusion.pipeline import SemanticGenerator

    return SemanticGenerator.load(tiny_checkpoint, device="cpu")


def wait_result(url: str, timeout: float = 60.0, until=("done", "failed")) -> dict:
    """Poll a receiver result URL until its status is in ``until``."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(url, timeout=5)
        r.raise_for_status()
        doc = r.json()
        if doc["status"] in until:
            return doc
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} still {doc['status']} after {timeout} s")
        time.sleep(0.05)


@dataclass
class Stack:
    """The three services running in-process."""

    tmp: Path
    receiver: object
    channel: object
    receiver_url: str
    sender_url: str
    channel_address: str
    budget_log: Path
    _exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @contextlib.contextmanager
    def sender(self, inject_segmenter=None, **settings):
        """Another sender (other settings, or pointing at a dead channel), for one test."""
        from sender.app import create_app
        from sender.settings import SenderSettings

        port = free_port()
        base = dict(port=port, channel_address=self.channel_address, receiver_url=self.receiver_url,
                    height=TINY_RESOLUTION[0], width=TINY_RESOLUTION[1], load_segmenter=False, channel_timeout_s=20)
        app = create_app(SenderSettings(**{**base, **settings}), segmenter=inject_segmenter)
        with UvicornThread(app, port) as server:
            yield server.url

    def budget_lines(self) -> list[str]:
        return self.budget_log.read_text().splitlines() if self.budget_log.exists() else []


@contextlib.contextmanager
def run_stack(tmp: Path, generator, segmenter=None, resolution: tuple[int, int] = TINY_RESOLUTION,
              **sender_settings):
    """The receiver (with ``generator``), the channel and a sender on free loopback ports.

    ``segmenter``: the sender's segmenter (``None``: uploads need a label map).
    ``sender_settings``: more :class:`SenderSettings` fields (e.g. ``aspect="letterbox"``).
    """
    from channel.server import create_server
    from channel.settings import ChannelSettings
    from receiver.service import ReceiverService
    from receiver.settings import ReceiverSettings
    from sender.app import create_app
    from sender.settings import SenderSettings

    rest, rgrpc, cport, sport = (free_port() for _ in range(4))
    exits = contextlib.ExitStack()
    with exits:
        receiver = ReceiverService(
            ReceiverSettings(port=rest, grpc_port=rgrpc, data_dir=tmp / "data", device="cpu", fsync=False, max_batch=4,
                             sender_url=f"http://127.0.0.1:{sport}"),
            generator=generator,
        ).start()
        exits.callback(receiver.stop)
        exits.enter_context(UvicornThread(receiver.app, rest))
        budget_log = tmp / "budget.jsonl"
        channel = create_server(ChannelSettings(port=cport, receiver_address=f"127.0.0.1:{rgrpc}", budget_log=budget_log)).start()
        exits.callback(channel.stop)
        sender = create_app(SenderSettings(port=sport, channel_address=f"127.0.0.1:{cport}",
                                           receiver_url=f"http://127.0.0.1:{rest}", height=resolution[0],
                                           width=resolution[1], load_segmenter=False, **sender_settings),
                            segmenter=segmenter)
        exits.enter_context(UvicornThread(sender, sport))
        yield Stack(tmp=tmp, receiver=receiver, channel=channel, receiver_url=f"http://127.0.0.1:{rest}",
                    sender_url=f"http://127.0.0.1:{sport}", channel_address=f"127.0.0.1:{cport}", budget_log=budget_log)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, tiny_generator):
    with run_stack(tmp_path_factory.mktemp("stack"), tiny_generator) as s:
        yield s


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, tmp_path):
    """An empty job store on each backend (the same tests run against both)."""
    from receiver.stores import open_store

    url = request.getfixturevalue("postgres").database() if request.param == "postgres" else ""
    store = open_store(url, tmp_path / "data", fsync=False)
    yield store
    store.close()
