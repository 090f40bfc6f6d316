"""Ports: ``gesco up`` takes GESCO_*_PORT, refuses taken ports before starting anything; the
gRPC servers do not share a port (no SO_REUSEPORT); ``gesco send`` reads GESCO_SENDER_URL."""

from __future__ import annotations

import argparse
import socket

import pytest

from gesco_net.cli import main as cli
from gesco_net.commands.up import resolve_ports
from gesco_net.grpc_kit import CHANNEL_SERVICE, make_server
from gesco_net.ports import PortInUseError, PortSpec, check_ports_free
from gesco_net.probes import free_port

PORT_ENV = ("GESCO_SENDER_PORT", "GESCO_CHANNEL_PORT", "GESCO_RECEIVER_PORT", "GESCO_RECEIVER_GRPC_PORT")


@pytest.fixture
def busy_port():
    """A port with a listening socket on it for the test's duration."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def clean_env(monkeypatch):
    for name in PORT_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_listening_port_is_refused(busy_port):
    free = free_port()
    check_ports_free("127.0.0.1", [PortSpec("sender HTTP", free, "default")])  # a free port passes
    with pytest.raises(PortInUseError, match=f"port {busy_port} is in use \\(channel gRPC, from --channel-port\\)"):
        check_ports_free("127.0.0.1", [PortSpec("sender HTTP", free, "default"),
                                       PortSpec("channel gRPC", busy_port, "--channel-port")])


def test_one_port_for_two_services_is_refused():
    port = free_port()
    with pytest.raises(PortInUseError, match=f"port {port} is given to both the sender HTTP"):
        check_ports_free("127.0.0.1", [PortSpec("sender HTTP", port, "default"), PortSpec("receiver REST", port, "x")])


def test_grpc_servers_do_not_share_a_port():
    first, _, port = make_server(CHANNEL_SERVICE, {}, "127.0.0.1:0")
    first.start()
    try:
        with pytest.raises(OSError, match="cannot bind"):
            make_server(CHANNEL_SERVICE, {}, f"127.0.0.1:{port}")
    finally:
        first.stop(None)


def _up_args(**ports) -> argparse.Namespace:
    base = dict(sender_port=None, channel_port=None, receiver_port=None, receiver_grpc_port=None)
    return argparse.Namespace(**{**base, **ports})


def test_ports_come_from_flags_then_environment_then_defaults(clean_env):
    clean_env.setenv("GESCO_CHANNEL_PORT", "9101")
    clean_env.setenv("GESCO_RECEIVER_GRPC_PORT", "9103")
    args = _up_args(receiver_grpc_port=9203)
    specs = resolve_ports(args)
    assert [(p.port, p.source) for p in specs] == [
        (8000, "default"), (9101, "GESCO_CHANNEL_PORT"), (8002, "default"), (9203, "--receiver-grpc-port")]
    assert (args.sender_port, args.channel_port, args.receiver_port, args.receiver_grpc_port) == (8000, 9101, 8002, 9203)


def test_a_bad_port_variable_is_an_error(clean_env):
    clean_env.setenv("GESCO_SENDER_PORT", "eighty")
    with pytest.raises(Exception, match="GESCO_"):
        resolve_ports(_up_args())


def test_gesco_up_refuses_a_taken_port_before_starting(clean_env, busy_port, tmp_path, capsys):
    clean_env.setenv("GESCO_CHANNEL_PORT", str(busy_port))
    code = cli(["up", "--sender-port", str(free_port()), "--receiver-port", str(free_port()),
                "--receiver-grpc-port", str(free_port()), "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"port {busy_port} is in use (channel gRPC, from GESCO_CHANNEL_PORT)" in err
    assert not (tmp_path / "data").exists()  # nothing was started or created


def test_gesco_send_takes_the_sender_url_from_the_environment(monkeypatch, tmp_path, capsys):
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("GESCO_SENDER_URL", dead)
    assert cli(["send", str(image)]) == 2
    assert f"cannot reach the sender at {dead}" in capsys.readouterr().err
    other = f"http://127.0.0.1:{free_port()}"
    assert cli(["send", str(image), "--sender", other]) == 2  # the flag wins
    assert f"cannot reach the sender at {other}" in capsys.readouterr().err
