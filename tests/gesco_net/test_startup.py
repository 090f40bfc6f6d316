"""The services' one start-up helper (gesco_net.startup): flags over settings, the exit status
and message of a service that cannot start, the open-port warning, the stop signals."""

from __future__ import annotations

import argparse
import logging
import os
import signal

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from gesco.errors import CheckpointError, GescoInputError
from gesco_net import startup
from gesco_net.startup import ServiceStart, run_service, settings_from_flags, stop_on_signals


class DemoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GESCO_DEMO_")
    host: str = "127.0.0.1"
    port: int = 9000
    log_level: str = "INFO"
    log_json: bool = False
    torch_threads: int = 0
    published_on: str = ""
    api_keys: str = ""
    api_keys_file: str | None = None


def demo_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m demo")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    return p


@pytest.fixture
def logged(monkeypatch):
    """The calls of configure_logging (the real one would replace pytest's log capture)."""
    calls = []
    monkeypatch.setattr(startup, "configure_logging", lambda *a: calls.append(a))
    return calls


def test_a_flag_overrides_the_environment_and_a_missing_flag_keeps_it(monkeypatch):
    monkeypatch.setenv("GESCO_DEMO_PORT", "9100")
    monkeypatch.setenv("GESCO_DEMO_HOST", "10.0.0.1")
    s = settings_from_flags(DemoSettings, demo_parser().parse_args(["--port", "9200"]))
    assert (s.host, s.port) == ("10.0.0.1", 9200)


def test_a_service_that_starts_is_served_then_exits_zero(logged):
    served = []
    start = ServiceStart("demo", demo_parser(), DemoSettings, build=lambda s: ("built", s.port),
                         serve=lambda service, s: served.append((service, s.host)))
    assert run_service(start, ["--port", "9300", "--host", "127.0.0.1"]) == 0
    assert served == [(("built", 9300), "127.0.0.1")]
    assert logged == [("demo", "INFO", False)]


def test_a_service_that_cannot_start_says_why_and_exits_two(logged, capsys):
    def build(settings):
        raise CheckpointError("no checkpoint at /nowhere")

    start = ServiceStart("demo", demo_parser(), DemoSettings, build=build, serve=lambda *a: pytest.fail("served"))
    assert run_service(start, []) == 2
    assert capsys.readouterr().err.strip() == "demo: cannot start: no checkpoint at /nowhere"


def test_an_error_outside_the_services_list_is_not_swallowed(logged):
    def build(settings):
        raise GescoInputError("not a start-up error of this service")

    start = ServiceStart("demo", demo_parser(), DemoSettings, build=build, serve=lambda *a: None,
                         errors=(CheckpointError,))
    with pytest.raises(GescoInputError):
        run_service(start, [])


@pytest.mark.parametrize(("host", "serves", "warned"), [
    ("0.0.0.0", True, True),      # open beyond loopback, no keys
    ("127.0.0.1", True, False),   # loopback only
    ("0.0.0.0", False, False),    # a process that serves nothing (the receiver's worker role)
])
def test_an_open_port_without_keys_is_warned_about(logged, caplog, host, serves, warned):
    start = ServiceStart("demo", demo_parser(), DemoSettings, build=lambda s: None, serve=lambda *a: None,
                         keys=("api_keys", "api_keys_file"), keys_when=lambda s: serves)
    with caplog.at_level(logging.INFO, logger="gesco.demo"):
        assert run_service(start, ["--host", host]) == 0
    warnings = [r for r in caplog.records if r.name == "gesco.demo" and r.levelno == logging.WARNING]
    assert bool(warnings) == warned, caplog.text
    if warned:
        assert "the demo listens on 0.0.0.0 without API keys" in warnings[0].getMessage()


def test_sigterm_and_sigint_set_the_stop_event():
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            stop = stop_on_signals()
            assert not stop.is_set()
            os.kill(os.getpid(), sig)
            assert stop.wait(5.0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
