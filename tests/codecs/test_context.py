"""The ``context`` codec: lossless on every scene type and class space, canonical payloads, refusals.

Generic properties shared with the other lossless codecs (random binary maps, rectangle
scenes, garbage payloads, frame bit accounting) are in ``test_codecs.py``; the pinned bits
are in ``test_pinned_bits.py``.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gesco.codecs import DEFAULT_CODEC, Layout, frame_bits, get_codec, link_frame_bytes, split_maps
from gesco.codecs.context import (
    FLAG_CONTEXTS,
    HOW_CONTEXTS,
    HOW_SYMBOLS,
    KINDS,
    PRIOR,
    StreamPair,
    StreamReader,
    decode_component,
    encode_component,
    label_stream_width,
    load_priors,
)
from gesco.codecs.demo_scene import street_scene
from gesco.data.synthetic import generate_scene
from gesco.errors import PayloadError
from gesco.semantics.classes import CLASS_SPACES
from gesco.semantics.layout import encode_layout
from gesco.wire import make_frame

CODEC = get_codec("context")
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _round_trip(maps: np.ndarray) -> bytes:
    payload = CODEC.encode(maps).payload
    out = CODEC.decode(payload, *maps.shape)
    assert out.dtype == np.uint8 and out.shape == maps.shape
    np.testing.assert_array_equal(out, maps)
    return payload


@st.composite
def scenes(draw) -> np.ndarray:
    """Present maps of a synthetic or a dense street scene, with or without instance edges,
    in any class space (the scene's labels remapped onto ids of that space)."""
    space = CLASS_SPACES[draw(st.sampled_from(sorted(CLASS_SPACES)))]
    seed = draw(st.integers(0, 2**31 - 1))
    if draw(st.booleans()):
        h, w = draw(st.sampled_from([(16, 16), (16, 40), (33, 17), (64, 128)]))
        scene = generate_scene(seed, h, w)
        label, instance = scene.label.astype(np.int64), scene.instance.astype(np.int64)
    else:
        h, w = draw(st.sampled_from([(32, 64), (37, 70)]))
        label, instance = street_scene(h, w, seed=seed % 1000)
    # remap the present labels to random ids of the drawn space
    present = np.unique(label)
    ids = np.random.default_rng(seed).choice(space.num_classes, size=present.size, replace=False)
    label = ids[np.searchsorted(present, label)]
    layout = encode_layout(label, space, instance if draw(st.booleans()) else None)
    return layout.maps


@PROPS
@given(maps=scenes())
def test_round_trip_every_scene_type_and_class_space(maps):
    _round_trip(maps)


@PROPS
@given(h=st.integers(1, 20), w=st.integers(1, 20), k=st.integers(1, 200), seed=st.integers(0, 2**32 - 1),
       density=st.sampled_from([0.0, 0.02, 0.3, 1.0]))
def test_round_trip_noisy_label_maps_any_alphabet(h, w, k, seed, density):
    """Label noise, tiny and one-pixel maps, alphabets from 1 to 200 (one-hot + edges)."""
    rng = np.random.default_rng(seed)
    label = np.full((h, w), rng.integers(0, k))
    noise = rng.random((h, w)) < density
    label[noise] = rng.integers(0, k, size=int(noise.sum()))
    maps = (label[None] == np.arange(k)[:, None, None]).astype(np.uint8)
    maps = maps[maps.reshape(k, -1).any(axis=1)]  # present classes only
    _round_trip(maps)
    edges = (rng.random((1, h, w)) < density).astype(np.uint8)
    _round_trip(np.concatenate([maps, edges]))


def test_street_and_synthetic_use_the_label_and_edge_layout():
    label, instance = street_scene(64, 128, seed=3)
    maps = encode_layout(label, CLASS_SPACES["cityscapes"], instance).maps
    assert split_maps(maps)[0] == Layout.PARTITION_EDGES
    payload = _round_trip(maps)
    assert payload[0] == Layout.PARTITION_EDGES


def test_bits_are_the_serialized_size():
    scene = generate_scene(5, 64, 128)
    layout = encode_layout(scene.label.astype(np.int64), CLASS_SPACES["cityscapes"], scene.instance)
    enc = CODEC.encode(layout.maps)
    assert enc.payload_bits == 8 * len(enc.payload)
    frame = make_frame(layout, CODEC, "frame-1", "cityscapes")
    payload_bits, header_bits = frame_bits(frame)
    assert payload_bits == enc.payload_bits
    # the counted bits are the bytes a link sends: lean header + payload
    assert payload_bits + header_bits == 8 * len(link_frame_bytes(frame))


def test_context_is_the_default_and_beats_contour_on_a_validation_scene():
    """One validation-split scene (the benchmark covers 100; see docs/bit_budget.md)."""
    from gesco.data.synthetic import split_seed

    assert DEFAULT_CODEC == "context"
    scene = generate_scene(split_seed("val", 0), 64, 128)
    maps = encode_layout(scene.label.astype(np.int64), CLASS_SPACES["cityscapes"], scene.instance).maps
    assert CODEC.encode(maps).payload_bits < 0.8 * get_codec("contour").encode(maps).payload_bits


# ---------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def scene_payload() -> tuple[np.ndarray, bytes]:
    scene = generate_scene(7, 64, 128)
    maps = encode_layout(scene.label.astype(np.int64), CLASS_SPACES["cityscapes"], scene.instance).maps
    return maps, CODEC.encode(maps).payload


def test_every_truncation_is_refused(scene_payload):
    maps, payload = scene_payload
    for cut in range(len(payload)):
        with pytest.raises(PayloadError):
            CODEC.decode(payload[:cut], *maps.shape)


@pytest.mark.parametrize("tail", [b"\x00", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04" * 8])
def test_over_long_payloads_are_refused(scene_payload, tail):
    maps, payload = scene_payload
    with pytest.raises(PayloadError):
        CODEC.decode(payload + tail, *maps.shape)


def test_wrong_header_shapes_are_refused(scene_payload):
    maps, payload = scene_payload
    n, h, w = maps.shape
    for shape in [(n, h + 1, w), (n, h, w - 1), (n + 1, h, w), (n - 1, h, w), (n, h // 2, w)]:
        with pytest.raises(PayloadError):
            CODEC.decode(payload, *shape)


@pytest.mark.parametrize(
    "hostile",
    [
        b"\x03",  # layout byte alone: no word count
        b"\x03\xff\xff\xff\xff\xff\x00",  # unterminated word count
        b"\x03\x7f" + b"\x00" * 8,  # more flag words than bytes
        b"\x03\x01" + b"\x00" * 5,  # stream bytes not whole words
        b"\x04" + b"\x00" * 9,  # unknown layout
    ],
)
def test_hostile_framing_is_refused(scene_payload, hostile):
    maps, _ = scene_payload
    with pytest.raises(PayloadError):
        CODEC.decode(hostile, *maps.shape)


@PROPS
@given(data=st.binary(min_size=1, max_size=96), n=st.integers(1, 5), h=st.integers(1, 24), w=st.integers(1, 24))
def test_any_bytes_are_refused_or_are_the_canonical_payload_of_what_they_decode_to(data, n, h, w):
    """The decoder accepts exactly the payloads the encoder writes."""
    try:
        out = CODEC.decode(data, n, h, w)
    except PayloadError:
        return
    assert out.shape == (n, h, w) and out.max(initial=0) <= 1
    assert CODEC.encode(out).payload == data


@PROPS
@given(flip=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_corrupted_bytes_are_refused_or_canonical(scene_payload, flip, bit):
    maps, payload = scene_payload
    i = flip % len(payload)
    bad = payload[:i] + bytes([payload[i] ^ (1 << bit)]) + payload[i + 1 :]
    try:
        out = CODEC.decode(bad, *maps.shape)
    except PayloadError:
        return
    assert CODEC.encode(out).payload == bad


def test_hostile_payload_decodes_in_bounded_memory():
    """A short random payload that claims 21 maps of 256x512: memory stays a few H*W arrays."""
    rng = np.random.default_rng(0)
    hostile = bytes([Layout.PARTITION_EDGES, 4]) + rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
    tracemalloc.start()
    try:
        with pytest.raises(PayloadError):
            CODEC.decode(hostile, 21, 256, 512)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"decoding a 40-byte payload peaked at {peak / 2**20:.1f} MiB"


# ---------------------------------------------------------------- the model's parts


def test_priors_asset_is_fitted_and_well_formed():
    priors = load_priors()
    for kind in KINDS:
        for phase, n_ctx in enumerate(FLAG_CONTEXTS):
            table = priors[kind][f"flags{phase}"]
            assert table.shape == (n_ctx, 2) and np.all(table > 0)
        assert priors[kind]["how"].shape == (HOW_CONTEXTS, HOW_SYMBOLS)
    # fitted, not the flat prior: the most common context (no boundary, no change) is very skewed
    p_change = priors["labels"]["flags0"][0, 1] / priors["labels"]["flags0"][0].sum()
    assert p_change < 0.05 and priors["labels"]["flags0"][0].sum() > 100 * PRIOR


def test_components_share_the_two_streams_in_order():
    rng = np.random.default_rng(3)
    label = np.repeat(rng.integers(0, 5, size=(1, 30)), 20, axis=0)
    label[7:, 11:] = 2
    binary = (rng.random((20, 30)) < 0.05).astype(np.int64)
    streams = StreamPair(label_stream_width([5, 2]))
    encode_component(streams, label, 5)
    encode_component(streams, binary, 2)
    reader = StreamReader(streams.finish(), label_stream_width([5, 2]))
    np.testing.assert_array_equal(decode_component(reader, 20, 30, 5), label)
    np.testing.assert_array_equal(decode_component(reader, 20, 30, 2), binary)
