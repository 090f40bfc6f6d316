"""The lean link header: exact round trips, the bit set / run-length choice, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gesco.codecs import frame_bits, get_codec, header_breakdown, link_frame_bytes, link_header_bytes
from gesco.codecs.link_header import (
    CODEC_NUMBERS,
    LinkHeader,
    link_header_fields,
    pack_link_header,
    parse_link_frame,
    parse_link_header,
)
from gesco.codecs.registry import codec_names
from gesco.data.synthetic import generate_scene
from gesco.errors import PayloadError
from gesco.semantics.classes import CITYSCAPES, CLASS_SPACES
from gesco.semantics.layout import encode_layout
from gesco.wire import make_frame

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def headers(draw) -> tuple[LinkHeader, int]:
    num_classes = draw(st.sampled_from([1, 2, 35, 151, 183]))
    ids = draw(st.sets(st.integers(0, num_classes - 1), min_size=1, max_size=num_classes))
    codec = draw(st.sampled_from(CODEC_NUMBERS))
    params: dict[str, int | str] = {}
    if codec == "downsample":
        params["factor"] = draw(st.integers(1, 64))
        inner = draw(st.sampled_from(["raw", "zlib", "lzma", "contour"]))  # the default inner codec is left out
        if draw(st.booleans()):
            params["inner"] = inner
        if draw(st.booleans()):
            params["upsample"] = "bilinear"
    scale = draw(st.sampled_from([0.0, 1.0, 0.37, 1e-3, 123.5]))
    header = LinkHeader(
        frame_number=draw(st.integers(0, 2**16 - 1)), height=draw(st.integers(1, 4096)), width=draw(st.integers(1, 4096)),
        class_ids=tuple(sorted(ids)), has_edges=draw(st.booleans()), codec=codec, codec_params=params,
        power_scale=float(np.float32(scale)), payload_length=draw(st.integers(0, 10**6)),
    )
    return header, num_classes


@PROPS
@given(hc=headers())
def test_round_trip_and_exact_size(hc):
    header, num_classes = hc
    data = pack_link_header(header, num_classes)
    assert parse_link_header(data, num_classes) == header
    fields = link_header_fields(header, num_classes)
    assert sum(fields.values()) == 8 * len(data) and 0 <= fields["padding"] < 8
    payload = bytes(range(7)) * (header.payload_length // 7) + bytes(header.payload_length % 7)
    assert parse_link_frame(data + payload, num_classes) == (header, payload)


def test_every_codec_has_a_link_number():
    assert set(codec_names()) <= set(CODEC_NUMBERS) and len(CODEC_NUMBERS) <= 8


def test_classes_take_the_shorter_of_bit_set_and_run_length():
    base = dict(frame_number=1, height=64, width=128, has_edges=True, codec="context")
    few = LinkHeader(class_ids=(3, 90, 150), **base)
    many = LinkHeader(class_ids=tuple(range(0, 35, 2)), **base)
    assert link_header_fields(few, 151)["classes"] < 151  # run-length over a large space
    assert link_header_fields(many, 35)["classes"] == 1 + 35  # the bit set
    assert link_header_fields(LinkHeader(class_ids=(0,), **base), 35)["classes"] == 1 + 1 + 1  # one class, gap 1


def test_a_test_frame_header_is_lean():
    """A 64x128 synthetic frame: ~100 header bits, against ~630 for the simulation's protobuf."""
    scene = generate_scene(11, 64, 128)
    layout = encode_layout(scene.label.astype(np.int64), CITYSCAPES, scene.instance)
    frame = make_frame(layout, get_codec("context"), "0123456789abcdef" * 2, "cityscapes")
    payload_bits, header_bits = frame_bits(frame)
    assert header_bits == 8 * len(link_header_bytes(frame)) <= 112
    assert frame_bits(frame, include_simulation_fields=True)[1] > 4 * header_bits
    assert payload_bits + header_bits == 8 * len(link_frame_bytes(frame))
    parts = header_breakdown(frame)
    assert parts["frame_number"] == 16 and parts["classes"] <= 1 + 35 and parts["codec"] == 3
    got = parse_link_header(link_header_bytes(frame, frame_number=77), CLASS_SPACES["cityscapes"].num_classes)
    assert got.frame_number == 77 and got.class_ids == tuple(layout.class_ids) and got.payload_length == len(frame.payload)


def test_refusals():
    header = LinkHeader(frame_number=5, height=64, width=128, class_ids=(1, 4), has_edges=True, codec="downsample",
                        codec_params={"factor": 4}, power_scale=0.5, payload_length=3)
    data = pack_link_header(header, 35)
    for cut in range(len(data)):
        with pytest.raises(PayloadError):
            parse_link_header(data[:cut], 35)
    with pytest.raises(PayloadError):
        parse_link_header(data + b"\x00", 35)  # trailing byte
    with pytest.raises(PayloadError):
        parse_link_frame(data + b"\x00\x00", 35)  # payload shorter than its length
    with pytest.raises(PayloadError):
        parse_link_frame(data + b"\x00" * 4, 35)  # longer
    with pytest.raises(PayloadError):
        parse_link_header(b"\xff" * 40, 35)  # codec number 7 is not a codec / impossible classes
    with pytest.raises(PayloadError):
        parse_link_header(bytes(6), 35)  # bit set with no class
    with pytest.raises(PayloadError):
        pack_link_header(LinkHeader(0, 64, 128, (40,), False, "context"), 35)  # class id outside the space
    with pytest.raises(PayloadError):
        pack_link_header(LinkHeader(0, 5000, 128, (1,), False, "context"), 35)  # side > 4096
    with pytest.raises(PayloadError):
        pack_link_header(LinkHeader(0, 64, 128, (1,), False, "jpeg"), 35)  # no codec number
