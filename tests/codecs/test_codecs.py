"""Map codecs: exact round trips, bit counts, the downsample codec, and error handling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gesco.codecs import (
    Layout,
    codec_names,
    downsample_maps,
    frame_bits,
    get_codec,
    header_breakdown,
    link_frame_bytes,
    link_header_bytes,
    split_maps,
)
from gesco.codecs.demo_scene import street_scene
from gesco.codecs.rangecoder import RangeDecoder, RangeEncoder, new_model
from gesco.errors import DTypeError, PayloadError, ShapeError, UnknownCodecError
from gesco.semantics.classes import CITYSCAPES
from gesco.semantics.layout import encode_layout, instance_edges
from gesco.wire import SemanticFrame, make_frame

LOSSLESS = ["raw", "zlib", "lzma", "contour", "context"]
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def street_maps() -> np.ndarray:
    """Present maps of a 128x256 street scene: ~20 one-hot class maps + the edge map."""
    label, instance = street_scene(128, 256, seed=3)
    return encode_layout(label, CITYSCAPES, instance).maps


# ---------------------------------------------------------------- strategies


@st.composite
def binary_maps(draw) -> np.ndarray:
    """Arbitrary binary maps (not a partition in general)."""
    n = draw(st.integers(1, 4))
    h = draw(st.integers(1, 12))
    w = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.sampled_from([0.0, 0.05, 0.5, 0.95, 1.0]))
    return (np.random.default_rng(seed).random((n, h, w)) < density).astype(np.uint8)


@st.composite
def scene_maps(draw) -> np.ndarray:
    """One-hot maps of a random label map made of rectangles (+ instance edges)."""
    h = draw(st.integers(1, 40))
    w = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_labels = draw(st.integers(1, 12))
    label = np.zeros((h, w), dtype=np.int64)
    instance = np.zeros((h, w), dtype=np.int64)
    for k in range(draw(st.integers(0, 15))):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        y1, x1 = rng.integers(y0, h + 1), rng.integers(x0, w + 1)
        cls = int(rng.integers(0, n_labels))
        label[y0:y1, x0:x1] = cls
        instance[y0:y1, x0:x1] = cls * 1000 + k
    if draw(st.booleans()):  # pixel noise: ragged boundaries
        noise = rng.random((h, w)) < 0.05
        label[noise] = rng.integers(0, n_labels, size=int(noise.sum()))
        instance[noise] = label[noise]
    class_ids = np.unique(label)
    maps = (label[None] == class_ids[:, None, None]).astype(np.uint8)
    if draw(st.booleans()):
        maps = np.concatenate([maps, instance_edges(instance)[None]])
    return maps


# ---------------------------------------------------------------- lossless round trips


@pytest.mark.parametrize("name", LOSSLESS)
@FAST
@given(maps=binary_maps())
def test_lossless_round_trip_random_binary_maps(name, maps):
    codec = get_codec(name)
    enc = codec.encode(maps)
    out = codec.decode(enc.payload, *maps.shape)
    assert out.dtype == np.uint8 and out.shape == maps.shape
    np.testing.assert_array_equal(out, maps)


@pytest.mark.parametrize("name", LOSSLESS)
@FAST
@given(maps=scene_maps())
def test_lossless_round_trip_scene_like_maps(name, maps):
    codec = get_codec(name)
    out = codec.decode(codec.encode(maps).payload, *maps.shape)
    np.testing.assert_array_equal(out, maps)


@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_round_trip_street_scene(name, street_maps):
    codec = get_codec(name)
    enc = codec.encode(street_maps)
    np.testing.assert_array_equal(codec.decode(enc.payload, *street_maps.shape), street_maps)
    np.testing.assert_array_equal(codec.channel_symbols(enc.payload, *street_maps.shape), street_maps)
    assert codec.channel_shape(*street_maps.shape) == street_maps.shape


def test_lossless_accepts_bool_and_wide_integer_maps(street_maps):
    codec = get_codec("contour")
    for maps in (street_maps.astype(bool), street_maps.astype(np.int64)):
        out = codec.decode(codec.encode(maps).payload, *maps.shape)
        np.testing.assert_array_equal(out, street_maps)


def test_layout_split_finds_partition_and_edges(street_maps):
    layout, components = split_maps(street_maps)
    assert layout == Layout.PARTITION_EDGES
    label, alphabet = components[0]
    assert alphabet == street_maps.shape[0] - 1
    np.testing.assert_array_equal(label, np.argmax(street_maps[:-1], axis=0))
    # the residual keeps only edges that the label map's own boundaries do not explain
    assert components[1][0].sum() < 0.1 * street_maps[-1].sum()
    assert split_maps(street_maps[:-1])[0] == Layout.PARTITION
    not_partition = street_maps.copy()
    not_partition[0, 0, 0] = 1 - not_partition[0, 0, 0]
    assert split_maps(not_partition[:-1])[0] == Layout.PLANES


# ---------------------------------------------------------------- sizes


def test_raw_payload_is_one_bit_per_pixel(street_maps):
    n, h, w = street_maps.shape
    enc = get_codec("raw").encode(street_maps)
    assert enc.payload_bits == 8 * math.ceil(n * h * w / 8)


def test_codecs_ordered_by_size_on_a_street_scene(street_maps):
    bits = {name: get_codec(name).encode(street_maps).payload_bits for name in LOSSLESS}
    assert bits["context"] < bits["contour"] < bits["lzma"] < bits["zlib"] < bits["raw"]
    # the entropy codec is far smaller than raw bits: < 1% on a street scene
    assert bits["contour"] < 0.01 * bits["raw"]


def test_range_coder_reaches_the_entropy():
    """A skewed source costs close to its entropy (the coder adapts to p = 0.02)."""
    rng = np.random.default_rng(0)
    bits = (rng.random(20000) < 0.02).astype(int).tolist()
    enc = RangeEncoder()
    model = new_model(1)
    for b in bits:
        enc.bit(model, 0, b)
    data = enc.finish()
    p = 0.02
    entropy = -(p * math.log2(p) + (1 - p) * math.log2(1 - p)) * len(bits)
    assert 8 * len(data) < 1.15 * entropy + 64
    dec = RangeDecoder(data)
    model = new_model(1)
    assert [dec.bit(model, 0) for _ in bits] == bits
    dec.check_end()


@FAST
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 3)), min_size=0, max_size=300))
def test_range_coder_round_trip(pairs):
    enc = RangeEncoder()
    model = new_model(4)
    for b, ctx in pairs:
        enc.bit(model, ctx, b)
    dec = RangeDecoder(enc.finish())
    model = new_model(4)
    assert [dec.bit(model, ctx) for _, ctx in pairs] == [b for b, _ in pairs]
    dec.check_end()


# ---------------------------------------------------------------- downsample


def test_downsample_majority_and_edges_by_hand():
    # 2 classes on a 4x4 image, k = 2: class 1 owns 3 pixels of the top-left block
    label = np.zeros((4, 4), dtype=np.int64)
    label[0, 0] = label[0, 1] = label[1, 0] = 1
    label[2:, 2:] = 1
    label[3, 3] = 0  # minority in its block
    maps = np.stack([(label == 0), (label == 1)]).astype(np.uint8)
    small = downsample_maps(maps, 2)
    np.testing.assert_array_equal(small[1], [[1, 0], [0, 1]])
    np.testing.assert_array_equal(small[0] + small[1], np.ones((2, 2)))  # still one-hot
    # a tie (2 vs 2) goes to the class listed first
    tie = np.zeros((2, 2, 2), dtype=np.uint8)
    tie[0, 0, :] = 1
    tie[1, 1, :] = 1
    np.testing.assert_array_equal(downsample_maps(tie, 2)[:, 0, 0], [1, 0])


def test_downsample_keeps_edges_of_the_small_layout(street_maps):
    small = downsample_maps(street_maps, 4)
    label_small = np.argmax(small[:-1], axis=0)
    edges_small = small[-1]
    # every boundary of the small label map is an edge
    assert np.all(edges_small >= instance_edges(label_small))
    # a thin edge line survives the 4x downsampling (majority would erase it)
    assert edges_small.sum() > 0


@pytest.mark.parametrize("k", [2, 3, 4, 8])
def test_downsample_codec_shapes_and_bits(k, street_maps):
    n, h, w = street_maps.shape
    codec = get_codec("downsample", factor=k)
    enc = codec.encode(street_maps)
    assert enc.params == {"factor": k}
    small_shape = (n, math.ceil(h / k), math.ceil(w / k))
    assert codec.channel_shape(n, h, w) == small_shape
    small = codec.channel_symbols(enc.payload, n, h, w)
    assert small.shape == small_shape
    np.testing.assert_array_equal(small, downsample_maps(street_maps, k))
    np.testing.assert_array_equal(small[:-1].sum(0), 1)  # class maps stay one-hot
    full = codec.decode(enc.payload, n, h, w)
    assert full.shape == street_maps.shape
    np.testing.assert_array_equal(full, codec.upsample(small, h, w))
    # most pixels keep their class
    agree = np.mean(np.argmax(full[:-1], 0) == np.argmax(street_maps[:-1], 0))
    assert agree > {2: 0.94, 3: 0.92, 4: 0.90, 8: 0.82}[k]  # measured: 0.954, 0.940, 0.923, 0.849
    assert enc.payload_bits < get_codec("contour").encode(street_maps).payload_bits


def test_downsample_odd_sizes_and_factor_one():
    rng = np.random.default_rng(1)
    label = rng.integers(0, 3, size=(7, 11))
    maps = (label[None] == np.arange(3)[:, None, None]).astype(np.uint8)
    codec = get_codec("downsample", factor=3)
    enc = codec.encode(maps)
    assert codec.channel_symbols(enc.payload, 3, 7, 11).shape == (3, 3, 4)
    assert codec.decode(enc.payload, 3, 7, 11).shape == (3, 7, 11)
    one = get_codec("downsample", factor=1)
    np.testing.assert_array_equal(one.decode(one.encode(maps).payload, 3, 7, 11), maps)


def test_upsample_numpy_torch_nearest_bilinear():
    received = torch.randn(2, 5, 4, 6)  # batch of noisy received symbols
    near = get_codec("downsample", factor=4)
    up = near.upsample(received, 13, 22)
    assert up.shape == (2, 5, 13, 22) and up.dtype == received.dtype
    assert torch.equal(up[..., 5, 9], received[..., 1, 2])  # pixel (5, 9) lies in block (1, 2)
    np.testing.assert_array_equal(near.upsample(received.numpy(), 13, 22), up.numpy())
    bil = get_codec("downsample", factor=4, upsample="bilinear")
    upb = bil.upsample(received.half(), 13, 22)
    assert upb.shape == (2, 5, 13, 22) and upb.dtype == torch.float16
    # constant maps stay constant under bilinear interpolation
    ones = bil.upsample(np.ones((3, 4, 6), dtype=np.uint8), 13, 22)
    np.testing.assert_allclose(ones, 1.0)
    with pytest.raises(ShapeError):
        near.upsample(received, 32, 32)
    with pytest.raises(ShapeError):
        get_codec("contour").upsample(received, 13, 22)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("name", LOSSLESS + ["downsample"])
def test_bad_payloads_raise_payload_error(name, street_maps):
    codec = get_codec(name)
    shape = street_maps.shape
    payload = codec.encode(street_maps).payload
    for bad in (b"", payload[:-1], payload[: len(payload) // 2], payload + b"\x00", payload + b"\x17"):
        with pytest.raises(PayloadError):
            codec.decode(bad, *shape)
    if name != "raw":  # raw has no framing: any bytes of the right size are valid maps
        with pytest.raises(PayloadError):
            codec.decode(b"\xff" + payload[1:], *shape)  # unknown layout / format byte


@pytest.mark.parametrize("name", ["raw", "zlib", "lzma"])
def test_header_shape_mismatch_raises_payload_error(name, street_maps):
    n, h, w = street_maps.shape
    codec = get_codec(name)
    payload = codec.encode(street_maps).payload
    shapes = [(n, h + 1, w), (n, h, w - 8)]
    if name != "lzma":  # lzma codes one label-index map: the number of maps is not in its size
        shapes.append((n + 1, h, w))
    for shape in shapes:
        with pytest.raises(PayloadError):
            codec.decode(payload, *shape)


@pytest.mark.parametrize("name", LOSSLESS + ["downsample"])
@FAST
@given(garbage=st.binary(min_size=0, max_size=64), n=st.integers(1, 4), h=st.integers(1, 16), w=st.integers(1, 16))
def test_garbage_payload_never_crashes(name, garbage, n, h, w):
    """Arbitrary bytes either raise PayloadError or decode to maps of the header's shape."""
    codec = get_codec(name)
    try:
        out = codec.decode(garbage, n, h, w)
    except PayloadError:
        return
    assert out.shape == (n, h, w) and out.dtype == np.uint8 and out.max(initial=0) <= 1


def test_bad_maps_and_shapes(street_maps):
    codec = get_codec("contour")
    with pytest.raises(ShapeError):
        codec.encode(street_maps[0])
    with pytest.raises(ShapeError):
        codec.encode(np.zeros((0, 4, 4), dtype=np.uint8))
    with pytest.raises(DTypeError):
        codec.encode(street_maps.astype(np.float32))
    with pytest.raises(DTypeError):
        codec.encode(street_maps * 2)
    with pytest.raises(DTypeError):
        codec.encode(street_maps.tolist())
    with pytest.raises(ShapeError):
        codec.decode(b"\x01\x00\x00\x00\x00", 0, 4, 4)


def test_unknown_codecs_and_parameters():
    assert set(codec_names()) == {"raw", "zlib", "lzma", "contour", "context", "downsample"}
    with pytest.raises(UnknownCodecError):
        get_codec("jpeg")
    with pytest.raises(UnknownCodecError):
        get_codec("raw", factor=2)
    for params in ({"factor": 0}, {"factor": 65}, {"factor": 2.5}, {"inner": "downsample"}, {"upsample": "cubic"}):
        with pytest.raises(UnknownCodecError):
            get_codec("downsample", **params)


# ---------------------------------------------------------------- bit accounting


def _frame(n_classes: int, **extra) -> SemanticFrame:
    label = np.arange(64).reshape(8, 8) % n_classes  # all n_classes present
    layout = encode_layout(label, CITYSCAPES)
    frame = make_frame(layout, get_codec("contour"), "frame-1", "cityscapes")
    for key, value in extra.items():
        setattr(frame, key, value)
    return frame


def test_frame_bits_counts_the_link_bytes():
    frame = _frame(4)
    payload_bits, header_bits = frame_bits(frame)
    assert payload_bits == 8 * len(frame.payload)
    # the header is the lean link header's bytes; header + payload is what the link sends
    assert header_bits == 8 * len(link_header_bytes(frame))
    assert payload_bits + header_bits == 8 * len(link_frame_bytes(frame))
    breakdown = header_breakdown(frame)
    assert sum(breakdown.values()) == header_bits
    # 16-bit frame number, 12 + 12 bits of shape, classes 0-3 of 35 by run-length (1 + 5 + 4 x 1)
    assert breakdown["frame_number"] == 16 and breakdown["shape"] == 24 and breakdown["classes"] == 1 + 5 + 4
    # with include_simulation_fields: the simulation's whole protobuf message
    header = SemanticFrame()
    header.CopyFrom(frame)
    header.payload = b""
    assert frame_bits(frame, include_simulation_fields=True)[1] == 8 * len(header.SerializeToString()) + 8 * 2
    full = header_breakdown(frame, include_simulation_fields=True)
    assert sum(full.values()) == frame_bits(frame, include_simulation_fields=True)[1]
    assert full["payload"] == 16 and full["class_ids"] == 8 * (2 + 4)


def test_header_bits_grow_with_class_ids_and_not_with_the_id():
    bits = [frame_bits(_frame(k))[1] for k in (1, 2, 4, 8, 16)]
    assert all(a <= b for a, b in zip(bits, bits[1:])) and bits[0] < bits[-1]
    # never more than the bit set over the 35 Cityscapes classes (+ its flag bit)
    assert all(header_breakdown(_frame(k))["classes"] <= 1 + 35 for k in (1, 8, 16, 35))
    assert header_breakdown(_frame(16))["classes"] == 1 + 9 + 16  # ids 0..15: run-length, 16 gaps of 1
    assert frame_bits(_frame(4, id="f" * 128))[1] == frame_bits(_frame(4))[1]


def test_header_counts_power_scale_and_codec_params_but_not_simulation_fields():
    frame = _frame(4)
    base = frame_bits(frame)[1]
    frame.power_scale = 0.37
    assert header_breakdown(frame)["power_scale"] == 1 + 32
    with_scale = frame_bits(frame)[1]
    assert with_scale > base
    frame.png_bits = 1_000_000
    frame.jpeg_bits = 300_000
    frame.jpeg_quality = 75
    frame.transmit.psnr_db = 10.0
    assert frame_bits(frame)[1] == with_scale
    assert frame_bits(frame, include_simulation_fields=True)[1] > with_scale
    ds = make_frame(encode_layout(np.zeros((8, 8), dtype=np.int64), CITYSCAPES), get_codec("downsample", factor=4), "f", "cityscapes")
    assert header_breakdown(ds)["codec_params"] == 6 + 3 + 1  # factor, inner codec, upsampling


# ---------------------------------------------------------------- image budget


def test_image_bits_raw_png_jpeg():
    from gesco.codecs import image_bits
    from gesco.errors import GescoInputError

    rng = np.random.default_rng(0)
    flat = np.full((64, 128, 3), 120, dtype=np.uint8)
    noisy = rng.integers(0, 256, size=(64, 128, 3), dtype=np.uint8)
    a, b = image_bits(flat), image_bits(noisy)
    assert a.raw == b.raw == 64 * 128 * 24 and a.jpeg_quality == 75
    assert a.png < 0.05 * a.raw  # a flat image compresses to almost nothing
    assert b.png > 0.9 * b.raw  # noise does not compress losslessly
    assert image_bits(noisy, jpeg_quality=95).jpeg > image_bits(noisy, jpeg_quality=30).jpeg
    with pytest.raises(ShapeError):
        image_bits(flat[:, :, 0])
    with pytest.raises(DTypeError):
        image_bits(flat.astype(np.float32))
    with pytest.raises(GescoInputError):
        image_bits(flat, jpeg_quality=0)
