"""Wire format: generated modules up to date, frame round trips, symbols, header validation."""

from __future__ import annotations

import re
from concurrent import futures
from pathlib import Path

import numpy as np
import pytest
import torch
from google.protobuf import descriptor_pb2

import gesco.wire as wire
from gesco.codecs import get_codec
from gesco.codecs.demo_scene import street_scene
from gesco.errors import ChannelParameterError, ClassIdError, PayloadError, ShapeError, UnknownCodecError
from gesco.link import check_transmit_params
from gesco.semantics.classes import CITYSCAPES
from gesco.semantics.layout import encode_layout
from gesco.wire import gesco_pb2
from gesco.wire.generate import GENERATED, STUB_IMPORT, WIRE_DIR, generate
from gesco_net import gesco_pb2_grpc


@pytest.fixture(scope="module")
def layout():
    label, instance = street_scene(64, 128, seed=1)
    return encode_layout(label, CITYSCAPES, instance)


@pytest.fixture()
def frame(layout) -> gesco_pb2.SemanticFrame:
    return wire.make_frame(layout, get_codec("contour"), "job-0001", "cityscapes")


# ---------------------------------------------------------------- generated modules


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (dev dependency) regenerates the wire modules")
    out = tmp_path_factory.mktemp("wire")
    generate(out_dir=out, descriptor_set=out / "descriptor.pb")
    return out


def _without_json_names(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """protoc's descriptor set adds json_name to every field; the generated module does not."""

    def strip(messages):
        for message in messages:
            for field in message.field:
                field.ClearField("json_name")
            strip(message.nested_type)

    out = descriptor_pb2.FileDescriptorProto()
    out.CopyFrom(file)
    strip(out.message_type)
    return out


def test_committed_descriptor_matches_proto(regenerated):
    """The committed gesco_pb2 describes exactly proto/gesco.proto (independent of protoc's version)."""
    fresh = descriptor_pb2.FileDescriptorSet.FromString((regenerated / "descriptor.pb").read_bytes())
    assert len(fresh.file) == 1
    committed = descriptor_pb2.FileDescriptorProto.FromString(gesco_pb2.DESCRIPTOR.serialized_pb)
    assert _without_json_names(committed) == _without_json_names(fresh.file[0]), (
        "gesco/wire is stale: run `python -m gesco.wire.generate`"
    )


def _protoc_version(text: str) -> str | None:
    match = re.search(r"^# Protobuf Python Version: (\S+)$", text, flags=re.M)
    return match.group(1) if match else None


def test_committed_modules_match_generator_output(regenerated):
    """Byte-identical modules (when the installed grpcio-tools is the one that generated them)."""
    committed_pb2 = (WIRE_DIR / "gesco_pb2.py").read_text()
    fresh_pb2 = (regenerated / "gesco_pb2.py").read_text()
    if _protoc_version(committed_pb2) != _protoc_version(fresh_pb2):
        pytest.skip(f"installed protoc differs from the committed modules' ({_protoc_version(committed_pb2)})")
    for name, folder in GENERATED.items():
        assert (folder / name).read_text() == (regenerated / name).read_text(), (
            f"{folder.name}/{name} is stale: run `python -m gesco.wire.generate`"
        )
    assert STUB_IMPORT in (regenerated / "gesco_pb2_grpc.py").read_text()


# ---------------------------------------------------------------- round trips


def test_frame_round_trip(frame, layout):
    frame.power_scale = 0.25
    frame.png_bits, frame.jpeg_bits, frame.jpeg_quality = 900_000, 200_000, 75
    frame.transmit.CopyFrom(
        wire.TransmitParams(psnr_db=10.0, channel="awgn", sampler="ddim", steps=50, guidance_scale=2.0, seed=7, fds=True)
    )
    data = frame.SerializeToString()
    back = wire.SemanticFrame.FromString(data)
    assert back == frame
    assert list(back.class_ids) == layout.class_ids.tolist()
    assert back.transmit.sampler == "ddim" and back.transmit.fds
    np.testing.assert_array_equal(wire.frame_maps(back), layout.maps)
    np.testing.assert_array_equal(wire.frame_channel_symbols(back), layout.maps)


def test_downsample_frame_carries_its_factor(layout):
    frame = wire.make_frame(layout, get_codec("downsample", factor=4), "job-ds", "cityscapes")
    assert frame.codec == "downsample" and frame.codec_params.factor == 4
    back = wire.SemanticFrame.FromString(frame.SerializeToString())
    codec = wire.codec_for_frame(back)
    assert codec.channel_shape(wire.n_maps(back), 64, 128) == (layout.maps.shape[0], 16, 32)
    assert wire.frame_channel_symbols(back).shape == (layout.maps.shape[0], 16, 32)
    assert wire.frame_maps(back).shape == layout.maps.shape


def test_lossless_frame_has_no_codec_params(frame):
    assert not frame.HasField("codec_params")


def test_received_frame_round_trip(frame):
    received_symbols = torch.randn(wire.n_maps(frame), frame.height, frame.width)
    header = wire.SemanticFrame()
    header.CopyFrom(frame)
    header.ClearField("payload")
    header.power_scale = 0.3
    received = wire.ReceivedFrame(
        header=header,
        symbols=wire.symbols_to_bytes(received_symbols),
        symbols_shape=list(received_symbols.shape),
        report=wire.ChannelReport(psnr_db=10, noise_variance=0.1, measured_snr_db=9.9, payload_bits=8 * len(frame.payload),
                                  header_bits=400, channel_uses=received_symbols.numel(), channel="awgn", power_scale=0.3),
    )
    back = wire.ReceivedFrame.FromString(received.SerializeToString())
    wire.validate_received_frame(back)
    out = wire.symbols_from_bytes(back.symbols, back.symbols_shape)
    torch.testing.assert_close(out, received_symbols.half().float(), rtol=0, atol=0)
    assert back.report.channel_uses == received_symbols.numel()
    bad = wire.ReceivedFrame()
    bad.CopyFrom(back)
    bad.symbols_shape[1] = frame.height + 1
    with pytest.raises(ShapeError):
        wire.validate_received_frame(bad)
    bad.CopyFrom(back)
    bad.symbols = back.symbols[:-2]
    with pytest.raises(PayloadError):
        wire.validate_received_frame(bad)


def test_grpc_services_round_trip(frame):
    """The generated gRPC module works in-process (package-relative import, both services)."""
    grpc = pytest.importorskip("grpc")

    class Channel(gesco_pb2_grpc.ChannelServicer):
        def Transmit(self, request, context):
            payload_bits, header_bits = wire.frame_bits(request)
            return wire.TransmitAck(id=request.id, status=wire.ACK_ACCEPTED,
                                    report=wire.ChannelReport(payload_bits=payload_bits, header_bits=header_bits))

    class Receiver(gesco_pb2_grpc.ReceiverServicer):
        def Deliver(self, request, context):
            return wire.DeliverAck(id=request.header.id, status=wire.ACK_REJECTED, message="test")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    gesco_pb2_grpc.add_ChannelServicer_to_server(Channel(), server)
    gesco_pb2_grpc.add_ReceiverServicer_to_server(Receiver(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            ack = gesco_pb2_grpc.ChannelStub(ch).Transmit(frame, timeout=10)
            assert ack.id == frame.id and ack.status == wire.ACK_ACCEPTED
            assert ack.report.payload_bits == 8 * len(frame.payload)
            dack = gesco_pb2_grpc.ReceiverStub(ch).Deliver(wire.ReceivedFrame(header=frame), timeout=10)
            assert dack.status == wire.ACK_REJECTED and dack.id == frame.id
    finally:
        server.stop(None)


# ---------------------------------------------------------------- symbols


def test_symbols_are_little_endian_float16():
    assert wire.symbols_to_bytes(np.array([1.0, -2.0])) == b"\x00\x3c\x00\xc0"
    out = wire.symbols_from_bytes(b"\x00\x3c\x00\xc0", [2])
    assert out.dtype == torch.float32 and out.tolist() == [1.0, -2.0]


def test_symbols_validation():
    data = wire.symbols_to_bytes(torch.zeros(2, 3))
    with pytest.raises(PayloadError):
        wire.symbols_from_bytes(data, (2, 4))  # size mismatch
    with pytest.raises(PayloadError):
        wire.symbols_from_bytes(data[:-1], (2, 3))
    with pytest.raises(ShapeError):
        wire.symbols_from_bytes(data, ())
    with pytest.raises(ShapeError):
        wire.symbols_from_bytes(b"", (0, 3))
    with pytest.raises(PayloadError):
        wire.symbols_to_bytes(torch.tensor([0.0, float("nan")]))
    with pytest.raises(PayloadError):
        wire.symbols_to_bytes(np.array([1e6]))  # beyond float16
    nan16 = np.array([np.nan], dtype="<f2").tobytes()
    with pytest.raises(PayloadError):
        wire.symbols_from_bytes(nan16, (1,))
    with pytest.raises(PayloadError):
        wire.symbols_to_bytes(np.array(["a"]))


# ---------------------------------------------------------------- header validation


def _bad(frame, **changes):
    out = wire.SemanticFrame()
    out.CopyFrom(frame)
    for key, value in changes.items():
        if key == "class_ids":
            del out.class_ids[:]
            out.class_ids.extend(value)
        elif key == "factor":
            out.codec_params.factor = value
        else:
            setattr(out, key, value)
    return out


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"height": 0}, ShapeError),
        ({"width": 0}, ShapeError),
        ({"width": 5000}, ShapeError),
        ({"class_ids": [7, 3]}, ClassIdError),  # unsorted
        ({"class_ids": [3, 3]}, ClassIdError),  # duplicate
        ({"class_ids": [3, 35]}, ClassIdError),  # outside the class space
        ({"class_ids": []}, ClassIdError),
        ({"num_classes": 19}, ClassIdError),  # cityscapes has 35
        ({"class_space": "kitti"}, ClassIdError),
        ({"class_space": "", "num_classes": 0}, ClassIdError),
        ({"codec": "jpeg"}, UnknownCodecError),
        ({"codec": ""}, UnknownCodecError),
        ({"codec": "downsample", "factor": 100}, UnknownCodecError),
        ({"payload": b""}, PayloadError),
        ({"id": ""}, PayloadError),
        ({"id": "x" * 200}, PayloadError),
        ({"power_scale": float("nan")}, ChannelParameterError),
        ({"power_scale": -1.0}, ChannelParameterError),
    ],
)
def test_validate_frame_rejects(frame, changes, error):
    wire.validate_frame(frame)  # the original is valid
    with pytest.raises(error):
        wire.validate_frame(_bad(frame, **changes))


def test_validate_frame_custom_class_space_and_transmit(frame):
    custom = _bad(frame, class_space="", num_classes=40)
    wire.validate_frame(custom)
    custom.transmit.psnr_db = float("inf")
    wire.validate_frame(custom)  # the frame's structure; its settings are checked once per ingest:
    with pytest.raises(ChannelParameterError, match="PSNR inf dB is outside"):
        check_transmit_params(custom)
    header = _bad(frame, payload=b"")
    wire.validate_frame(header, require_payload=False)


def test_codec_params_message_round_trip():
    msg = wire.codec_params_message({"factor": 4, "inner": "lzma", "upsample": "bilinear"})
    assert wire.codec_params_dict(msg) == {"factor": 4, "inner": "lzma", "upsample": "bilinear"}
    assert wire.codec_params_dict(wire.CodecParams()) == {}
    with pytest.raises(UnknownCodecError):
        wire.codec_params_message({"quality": 3})
