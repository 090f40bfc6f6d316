"""Hardening of the gRPC hops (issue 14): what a hand-made frame can no longer do.

Each test is one failure found by attacking ``gesco up`` on the old main: memory bombs
(a tiny frame declaring huge maps), maps that are not what the header lists, ids with a
trailing newline, reports the receiver stored blindly, a duplicated budget line.
"""

from __future__ import annotations

import json
import time

import grpc
import numpy as np
import pytest
from frame_helpers import SPACE, deliver, make_frame, received_frame, transmit

from gesco.codecs import get_codec
from gesco.codecs.downsample import DownsampleCodec
from gesco.codecs.lossless import LosslessCodec
from gesco.link import apply_channel
from gesco.semantics.layout import SemanticLayout
from gesco.wire import ACK_ACCEPTED, ReceivedFrame, SemanticFrame
from gesco.wire.frames import make_frame as code_frame


@pytest.fixture()
def no_decoding(monkeypatch):
    """Fail loudly if any codec decodes or upsamples (the check must come first)."""
    calls = []

    def spy(name):
        def fail(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called for a frame that must be refused first")
        return fail

    monkeypatch.setattr(LosslessCodec, "channel_symbols", spy("decode"))
    monkeypatch.setattr(LosslessCodec, "decode", spy("decode"))
    monkeypatch.setattr(DownsampleCodec, "channel_symbols", spy("decode"))
    monkeypatch.setattr(DownsampleCodec, "upsample", spy("upsample"))
    return calls


def test_tiny_frame_declaring_huge_maps_is_refused_before_decoding(stack, no_decoding):
    bomb = SemanticFrame(id="bomb", height=4096, width=4096, num_classes=SPACE.num_classes, class_space="cityscapes",
                         class_ids=list(range(12)), codec="contour", payload=b"\x00" * 64)
    assert len(bomb.SerializeToString()) < 160  # the frame: 140 bytes, 12 maps of 4096 x 4096
    t0 = time.perf_counter()
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, bomb)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert "map elements" in err.value.details() and "limit" in err.value.details()
    assert time.perf_counter() - t0 < 2.0 and no_decoding == []


def test_channel_with_known_resolution_refuses_other_sizes(tmp_path, no_decoding):
    from channel.server import create_server
    from channel.settings import ChannelSettings
    from gesco_net.probes import free_port

    chan = create_server(ChannelSettings(port=0, receiver_address=f"127.0.0.1:{free_port()}", height=64, width=128,
                                         budget_log=tmp_path / "b.jsonl")).start()
    try:
        with pytest.raises(grpc.RpcError) as err:
            transmit(chan.address, make_frame("other-size"))  # 32 x 64
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "64x128" in err.value.details()
    finally:
        chan.stop()
    assert no_decoding == []


def test_downsampled_bomb_is_refused_by_the_receiver_before_upsampling(stack, no_decoding):
    # 36 maps declared at 4096 x 4096, sent as 64 x 64 symbols (factor 64): 295 KB that
    # upsample to 604 M values
    header = SemanticFrame(id="rx-bomb", height=4096, width=4096, num_classes=SPACE.num_classes,
                           class_space="cityscapes", class_ids=list(range(35)), has_edges=True, codec="downsample")
    header.codec_params.factor = 64
    header.transmit.psnr_db = 10.0
    rx = ReceivedFrame(header=header, symbols=np.zeros((36, 64, 64), "<f2").tobytes(), symbols_shape=[36, 64, 64])
    rx.report.psnr_db, rx.report.channel_uses, rx.report.channel = 10.0, 36 * 64 * 64, "awgn"
    assert len(rx.SerializeToString()) < 300_000
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, rx)
    # refused by the first check: 295 KB of symbols is over this model's budget ((C + 1) * H * W float16)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert "ReceivedFrame.symbols is 294912 bytes long" in err.value.details()
    assert no_decoding == [] and stack.receiver.store.get("rx-bomb") is None
    # with symbols small enough, the declared size is what refuses it
    del header.class_ids[11:]  # 12 maps of 64 x 64 symbols: 98 KB
    rx = ReceivedFrame(header=header, symbols=np.zeros((12, 64, 64), "<f2").tobytes(), symbols_shape=[12, 64, 64])
    rx.report.psnr_db, rx.report.channel_uses, rx.report.channel = 10.0, 12 * 64 * 64, "awgn"
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, rx)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "4096x4096" in err.value.details()
    assert no_decoding == [] and stack.receiver.store.get("rx-bomb") is None


def test_oversized_payload_is_refused(stack):
    frame = make_frame("fat-payload")
    frame.payload = frame.payload + b"\x00" * (len(frame.class_ids) + 1) * 32 * 64 * 2
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, frame)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "payload is" in err.value.details()


def _frame_with_maps(frame_id: str, maps: np.ndarray, class_ids: list[int], has_edges: bool) -> SemanticFrame:
    layout = SemanticLayout(maps=maps.astype(np.uint8), class_ids=np.asarray(class_ids), num_classes=SPACE.num_classes,
                            has_edges=has_edges)
    frame = code_frame(layout, get_codec("contour"), frame_id, class_space="cityscapes")
    frame.transmit.psnr_db, frame.transmit.steps = 10.0, 2
    return frame


def test_extra_class_ids_and_fake_edge_maps_are_refused_by_the_channel(stack):
    good = make_frame("layout-base")
    maps = np.zeros((3, 32, 64), np.uint8)
    maps[0, :16], maps[1, 16:] = 1, 1  # two classes, halves of the image; map 2: an empty "class"
    before = len(stack.budget_lines())
    extra = _frame_with_maps("extra-class", maps, [7, 11, 21], has_edges=False)
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, extra)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "[21]" in err.value.details()
    # has_edges, but the last map is one more class: the first two do not cover the image
    three = np.zeros((3, 32, 64), np.uint8)
    three[0, :10], three[1, 10:20], three[2, 20:] = 1, 1, 1
    fake_edges = _frame_with_maps("fake-edges", three, [7, 11], has_edges=True)
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, fake_edges)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "edge map" in err.value.details()
    assert len(stack.budget_lines()) == before
    assert transmit(stack.channel_address, good).status == ACK_ACCEPTED


@pytest.mark.parametrize("bad_id", ["x\n", "a/b", "-lead", "x" * 129, "é"])
def test_bad_ids_are_refused_at_every_hop(stack, bad_id):
    frame = make_frame("id-base")
    frame.id = bad_id
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, frame)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad_id
    rx = received_frame("id-base-rx")
    rx.header.id = bad_id
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, rx)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad_id


def _rx_variants():
    def psnr(rx):
        rx.report.psnr_db = rx.header.transmit.psnr_db = -1e6

    def nan_noise(rx):
        rx.report.noise_variance = float("nan")

    def nan_snr(rx):
        rx.report.measured_snr_db = float("nan")

    def inf_psnr(rx):
        rx.report.psnr_db = rx.header.transmit.psnr_db = float("inf")

    def uses(rx):
        rx.report.channel_uses += 1000

    def report_psnr_differs(rx):
        rx.report.psnr_db = 30.0

    def junk_payload(rx):
        rx.header.payload = b"\x00" * 1000

    def bad_preset(rx):
        rx.header.transmit.channel = "nope"

    return [psnr, nan_noise, nan_snr, inf_psnr, uses, report_psnr_differs, junk_payload, bad_preset]


@pytest.mark.parametrize("mutate", _rx_variants(), ids=lambda f: f.__name__)
def test_receiver_refuses_reports_and_headers_the_channel_cannot_send(stack, mutate):
    rx = received_frame(f"rx-{mutate.__name__.replace('_', '-')}")
    mutate(rx)
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, rx, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert stack.receiver.store.get(rx.header.id) is None


def test_messages_over_the_served_models_largest_frame_are_refused_by_grpc(stack):
    """The receiver's gRPC limit is sized to its model's largest valid frame (+25%), not 64 MiB."""
    rx = received_frame("rx-20mb")
    rx.header.payload = b"\x00" * (20 * 1024 * 1024)
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, rx, timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in err.value.details()
    assert stack.receiver.store.get("rx-20mb") is None


def test_unknown_fields_are_refused_and_not_stored(stack):
    rx = received_frame("rx-unknown-fields")
    data = rx.SerializeToString() + b"\xfa\x3f\x04junk"  # field 1023, length-delimited, unknown
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, data)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown field" in err.value.details()
    assert stack.receiver.store.get("rx-unknown-fields") is None


def test_identical_repeated_transmit_writes_one_budget_line(stack):
    frame = make_frame("twice")
    for _ in range(3):
        assert transmit(stack.channel_address, frame).status == ACK_ACCEPTED
    ids = [json.loads(line)["id"] for line in stack.budget_lines()]
    assert ids.count("twice") == 1


def test_budget_line_written_by_the_retry_when_the_first_attempt_lost_it(stack, monkeypatch):
    """The channel fails after the receiver stored the job, before the budget line: the retry writes it."""
    service = stack.channel.service
    real = service.budget_log.append_once
    state = {"failed": False}

    def crash_once(record):
        if not state["failed"]:
            state["failed"] = True
            raise OSError(28, "No space left on device")
        return real(record)

    monkeypatch.setattr(service.budget_log, "append_once", crash_once)
    frame = make_frame("lost-line")
    with pytest.raises(grpc.RpcError):
        transmit(stack.channel_address, frame)
    assert stack.receiver.store.get("lost-line") is not None  # stored: the reply was what got lost
    assert transmit(stack.channel_address, frame).status == ACK_ACCEPTED
    assert transmit(stack.channel_address, frame).status == ACK_ACCEPTED
    ids = [json.loads(line)["id"] for line in stack.budget_lines()]
    assert ids.count("lost-line") == 1


def test_budget_log_reads_logged_ids_at_start(tmp_path):
    from channel.budget_log import BudgetLog

    path = tmp_path / "budget.jsonl"
    path.write_text('{"id": "a"}\nnot json\n')
    log = BudgetLog(path, fsync=False)
    assert not log.append_once({"id": "a"}) and log.append_once({"id": "b"})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()[2:]] == ["b"]


def test_apply_channel_refuses_declared_bombs_without_a_server(no_decoding):
    bomb = SemanticFrame(id="b", height=4096, width=4096, num_classes=35, class_space="cityscapes",
                         class_ids=[0, 1, 2, 3], codec="raw", payload=b"\x00")
    from gesco.wire.limits import FrameTooLargeError

    with pytest.raises(FrameTooLargeError):
        apply_channel(bomb)
