"""The channel's gRPC service: bits, noise, forwarding, budget log, errors, health.

The receiver is the real one (in-process, ``stack``) except where a fault is injected:
a receiver that is down (closed port), slow (never answers) or refuses the frame.
"""

from __future__ import annotations

import json
import threading
from concurrent import futures

import grpc
import pytest
from frame_helpers import make_frame, transmit
from svc_helpers import TINY_RESOLUTION

from gesco.codecs import frame_bits
from gesco.wire import ACK_ACCEPTED, DeliverAck, ReceivedFrame
from gesco_net import gesco_pb2_grpc
from gesco_net.probes import free_port, grpc_health


class FaultyReceiver(gesco_pb2_grpc.ReceiverServicer):
    """A receiver that refuses every frame, or never answers (``hang``)."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.release = threading.Event()
        self.seen: list[ReceivedFrame] = []

    def Deliver(self, request, context):
        self.seen.append(request)
        if self.hang:
            self.release.wait(10)
            return DeliverAck(id=request.header.id, status=ACK_ACCEPTED)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "this receiver refuses everything")


@pytest.fixture()
def faulty_channel(tmp_path):
    """A channel whose receiver is a FaultyReceiver; yields (channel address, servicer, log path)."""
    from channel.server import create_server
    from channel.settings import ChannelSettings

    made = []

    def make(hang: bool = False, timeout: float = 10.0):
        servicer = FaultyReceiver(hang)
        server = grpc.server(futures.ThreadPoolExecutor(2))
        gesco_pb2_grpc.add_ReceiverServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        log = tmp_path / "budget.jsonl"
        chan = create_server(ChannelSettings(port=0, receiver_address=f"127.0.0.1:{port}", budget_log=log,
                                             receiver_timeout_s=timeout)).start()
        made.append((chan, server, servicer))
        return chan.address, servicer, log

    yield make
    for chan, server, servicer in made:
        servicer.release.set()
        chan.stop(grace=1)
        server.stop(0)


def test_transmit_counts_bits_forwards_and_logs(stack):
    frame = make_frame("chan-ok", psnr_db=5.0)
    before = len(stack.budget_lines())
    ack = transmit(stack.channel_address, frame)
    assert ack.status == ACK_ACCEPTED and ack.id == "chan-ok"
    assert (ack.report.payload_bits, ack.report.header_bits) == frame_bits(frame)
    assert ack.report.channel_uses == (len(frame.class_ids) + 1) * TINY_RESOLUTION[0] * TINY_RESOLUTION[1]
    assert ack.report.noise_variance == pytest.approx(10 ** -0.5, rel=1e-6)
    lines = stack.budget_lines()
    assert len(lines) == before + 1
    rec = json.loads(lines[-1])
    expected = {"id", "time", "height", "width", "present_classes", "payload_bits", "header_bits", "channel_uses",
                "png_bits", "jpeg_bits", "reduction_png_pct", "reduction_jpeg_pct", "psnr_db", "measured_snr_db",
                "channel"}
    assert expected <= set(rec)
    assert rec["id"] == "chan-ok" and rec["psnr_db"] == 5.0 and rec["present_classes"] == list(frame.class_ids)
    assert rec["png_bits"] == frame.png_bits and rec["measured_snr_db"] == pytest.approx(ack.report.measured_snr_db, abs=1e-3)
    job = stack.receiver.store.get("chan-ok")
    assert job is not None and job.budget["total_bits"] == rec["total_bits"]


def test_malformed_and_inconsistent_frames_are_invalid_argument(stack):
    before = len(stack.budget_lines())
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, b"\x0a\xff\xff\xff\xff\xff\xff")  # truncated length-delimited field
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed SemanticFrame" in err.value.details()
    bad = make_frame("chan-bad")
    bad.class_ids[:] = [26, 7]  # not increasing
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, bad)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "increasing" in err.value.details()
    corrupt = make_frame("chan-corrupt")
    corrupt.payload = corrupt.payload[:3]
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, corrupt)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    out_of_range = make_frame("chan-psnr")
    out_of_range.transmit.psnr_db = 1e6
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, out_of_range)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "PSNR" in err.value.details()
    assert len(stack.budget_lines()) == before
    # and it keeps serving
    assert transmit(stack.channel_address, make_frame("chan-after-bad")).status == ACK_ACCEPTED


@pytest.mark.parametrize("model, params, logged", [
    ("rayleigh", {}, {"block_length": 1024, "equalizer": "mmse"}),
    ("rayleigh", {"block_length": 16, "equalizer": "zf"}, {"block_length": 16, "equalizer": "zf"}),
    ("rayleigh-nocsi", {"block_length": 0}, {"block_length": 0}),
    ("tdl", {"model": "C", "delay_spread_ns": 300}, {"model": "C", "delay_spread_ns": 300.0}),
])
def test_fading_models_per_request_are_applied_and_logged(stack, model, params, logged):
    if model == "tdl":
        pytest.importorskip("sionna.phy", reason="the 'tdl' model needs the [sionna] extra (CI installs it)")
    frame_id = f"chan-{model}-{len(params)}"
    frame = make_frame(frame_id, psnr_db=10.0, channel=model, channel_params=params)
    ack = transmit(stack.channel_address, frame)
    assert ack.status == ACK_ACCEPTED and ack.report.channel == model
    assert ack.report.channel_uses == (len(frame.class_ids) + 1) * TINY_RESOLUTION[0] * TINY_RESOLUTION[1]
    rec = json.loads(stack.budget_lines()[-1])
    assert rec["id"] == frame_id and rec["channel"] == model
    assert logged.items() <= rec["channel_params"].items()
    assert stack.receiver.store.get(frame_id) is not None


@pytest.mark.parametrize("model, params, words", [
    ("fading", {}, ["unknown channel model 'fading'", "awgn", "rayleigh", "rayleigh-nocsi", "tdl"]),
    ("rayleigh", {"block_length": "minus one"}, ["block_length"]),
    ("rayleigh", {"speed": "3"}, ["speed", "Parameters of 'rayleigh'", "equalizer"]),
    ("awgn", {"normalize_power": "perhaps"}, ["normalize_power"]),
])
def test_unknown_model_or_bad_parameters_are_invalid_argument(stack, model, params, words):
    before = len(stack.budget_lines())
    frame = make_frame("chan-bad-model")
    frame.transmit.channel = model
    frame.transmit.channel_params.update(params)
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, frame)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for w in words:
        assert w in err.value.details(), (w, err.value.details())
    assert len(stack.budget_lines()) == before
    assert stack.receiver.store.get("chan-bad-model") is None


def test_receiver_down_is_unavailable(tmp_path):
    from channel.server import create_server
    from channel.settings import ChannelSettings

    log = tmp_path / "budget.jsonl"
    chan = create_server(ChannelSettings(port=0, receiver_address=f"127.0.0.1:{free_port()}", budget_log=log)).start()
    try:
        with pytest.raises(grpc.RpcError) as err:
            transmit(chan.address, make_frame("nobody-home"))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "receiver" in err.value.details()
        assert not log.exists() or log.read_text() == ""
    finally:
        chan.stop()


def test_receiver_refusal_and_timeout_are_passed_on(faulty_channel):
    address, servicer, log = faulty_channel()
    with pytest.raises(grpc.RpcError) as err:
        transmit(address, make_frame("refused"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "refuses everything" in err.value.details()
    assert len(servicer.seen) == 1 and servicer.seen[0].header.payload == b""
    address, servicer, log = faulty_channel(hang=True, timeout=0.5)
    with pytest.raises(grpc.RpcError) as err:
        transmit(address, make_frame("slow"))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "did not acknowledge" in err.value.details()
    assert not log.exists() or log.read_text() == ""


def test_health(stack):
    assert grpc_health(stack.channel_address) == "SERVING"
    assert grpc_health(stack.channel_address, "gesco.v1.Channel") == "SERVING"
    assert grpc_health(f"127.0.0.1:{free_port()}") == "UNREACHABLE"


def test_bad_appearance_side_channels_are_invalid_argument_and_not_counted(stack):
    """The appearance side channel (issue 24) over gRPC: an unknown mode, a payload of the wrong
    size and a repeat left to the sender (0) are refused with INVALID_ARGUMENT naming the fault;
    nothing reaches the budget log, and the channel keeps serving."""
    from gesco.wire.gesco_pb2 import AppearanceParams

    before = len(stack.budget_lines())
    cases = {
        "mode must be one of": (AppearanceParams(mode="sepia", bits=6, repeat=1), b"\x00\x00\x00"),
        "needs 3": (AppearanceParams(mode="mean", bits=6, repeat=1), b"\x00" * 5),
        "repeat 0": (AppearanceParams(mode="mean", bits=6, repeat=0), b"\x00\x00\x00"),
    }
    for i, (message, (params, payload)) in enumerate(cases.items()):
        frame = make_frame(f"chan-appearance-{i}")
        frame.appearance.CopyFrom(params)
        frame.appearance_bits = payload
        with pytest.raises(grpc.RpcError) as err:
            transmit(stack.channel_address, frame)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert message in err.value.details()
    assert len(stack.budget_lines()) == before
    assert transmit(stack.channel_address, make_frame("chan-after-appearance")).status == ACK_ACCEPTED
