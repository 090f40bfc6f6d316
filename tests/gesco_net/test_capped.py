"""One cap for echoed client input: error details, gRPC status details, log lines."""

from __future__ import annotations

import logging
import threading

import grpc
import numpy as np
import pytest

from gesco.errors import GescoInputError
from gesco.wire import DeliverAck, ReceivedFrame
from gesco_net.capped import MAX_DETAIL_CHARS, CapLogFilter, cap_text
from gesco_net.grpc_kit import make_server, tolerant_unary


def test_cap_text_keeps_short_text_and_names_the_length_of_long_text():
    assert cap_text("abc") == "abc"
    capped = cap_text("x" * 5000)
    assert capped.startswith("x" * MAX_DETAIL_CHARS) and capped.endswith("... (5000 characters)")
    assert len(capped) < MAX_DETAIL_CHARS + 30


def _record(msg, *args) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)


def test_log_filter_caps_template_and_arguments_before_formatting():
    record = _record("frame %s: %d maps, %.1f dB, %s", "i" * 10**6, np.int64(3), 2.5, list(range(10**5)))
    assert CapLogFilter().filter(record)
    line = record.getMessage()
    assert "3 maps, 2.5 dB" in line and "(1000000 characters)" in line and "<list of 100000 items>" in line
    assert len(line) < 3 * MAX_DETAIL_CHARS
    record = _record("y" * 10**6)
    CapLogFilter().filter(record)
    assert len(record.getMessage()) < MAX_DETAIL_CHARS + 30


def test_configured_service_logging_caps_lines(capsys):
    from gesco_net.logs import configure_logging

    root = logging.getLogger()
    old_handlers, old_level = list(root.handlers), root.level
    try:
        configure_logging("test", json_logs=True)
        logging.getLogger("gesco.test").info("bad value %s", "v" * 10**6)
        err = capsys.readouterr().err
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in old_handlers:
            root.addHandler(h)
        root.setLevel(old_level)
    assert "(1000000 characters)" in err and len(err) < 2 * MAX_DETAIL_CHARS


def _serve(handler, **kwargs):
    server, _health, port = make_server("gesco.v1.Receiver",
                                        {"Deliver": tolerant_unary(handler, ReceivedFrame, DeliverAck)},
                                        "127.0.0.1:0", **kwargs)
    server.start()
    return server, port


def _deliver(port: int, timeout: float = 10.0):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        return ch.unary_unary("/gesco.v1.Receiver/Deliver", request_serializer=ReceivedFrame.SerializeToString,
                              response_deserializer=DeliverAck.FromString)(ReceivedFrame(), timeout=timeout)


def test_a_long_status_detail_is_capped_and_keeps_its_code():
    """Uncapped, a 20 KB detail exceeds the client's metadata limit: RESOURCE_EXHAUSTED instead of the cause."""
    def handler(request, context):
        raise GescoInputError("bad value " + "z" * 20_000)

    server, port = _serve(handler)
    try:
        with pytest.raises(grpc.RpcError) as err:
            _deliver(port)
    finally:
        server.stop(None)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().endswith("characters)") and len(err.value.details()) < MAX_DETAIL_CHARS + 30


def test_calls_beyond_the_concurrency_cap_are_refused():
    release, entered = threading.Event(), threading.Semaphore(0)

    def handler(request, context):
        entered.release()
        release.wait(10)
        return DeliverAck(id="ok")

    server, port = _serve(handler, max_workers=2, max_concurrent_calls=2)
    results: list = []

    def call():
        try:
            results.append(_deliver(port).id)
        except grpc.RpcError as e:
            results.append(e.code())

    threads = [threading.Thread(target=call) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        assert entered.acquire(timeout=10) and entered.acquire(timeout=10)  # both calls running
        with pytest.raises(grpc.RpcError) as err:
            _deliver(port)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        release.set()
        for t in threads:
            t.join(10)
        server.stop(None)
    assert results == ["ok", "ok"]
