"""Deadlines for requests that arrive slowly (gesco_net.slow_requests)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI, Request

from gesco_net.probes import free_port
from gesco_net.slow_requests import uvicorn_timeouts


@pytest.fixture(scope="module")
def server():
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        **uvicorn_timeouts(header_timeout_s=0.5, body_timeout_s=0.5)))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not srv.started and time.time() < deadline:
        time.sleep(0.02)
    yield port
    srv.should_exit = True
    thread.join(10)


def _read_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    out = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return out
        out += chunk


def test_headers_that_trickle_in_past_the_deadline_get_408_and_a_closed_connection(server):
    with socket.create_connection(("127.0.0.1", server)) as sock:
        t0 = time.monotonic()
        sock.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\n")
        for _ in range(3):  # bytes keep coming, but the deadline is not extended
            time.sleep(0.25)
            try:
                sock.sendall(b"x-slow: 1\r\n")
            except OSError:
                break
        reply = _read_all(sock)
        assert reply.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 3


def test_a_silent_connection_is_closed(server):
    with socket.create_connection(("127.0.0.1", server)) as sock:
        assert _read_all(sock).startswith(b"HTTP/1.1 408")


def test_a_body_that_never_completes_is_cut_off(server):
    with socket.create_connection(("127.0.0.1", server)) as sock:
        t0 = time.monotonic()
        sock.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n" + b"a" * 10)
        reply = _read_all(sock)
        assert reply.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 3


def test_requests_in_time_are_served_and_keep_alive_still_works(server):
    with socket.create_connection(("127.0.0.1", server)) as sock:
        for _ in range(2):
            sock.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc")
            sock.settimeout(5)
            reply = b""
            while not reply.endswith(b"}"):
                reply += sock.recv(4096)
            assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b'{"bytes":3}')
            time.sleep(0.7)  # longer than the deadlines: an idle keep-alive connection is not a slow request
