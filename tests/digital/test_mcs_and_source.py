"""Rate adaptation (gesco.digital.mcs) and the source side (gesco.digital.source); no Sionna needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gesco.codecs import frame_bits
from gesco.data.synthetic import generate_scene
from gesco.digital.link import CRC_BITS, K_MAX, channel_uses_for, code_layout
from gesco.digital.mcs import MCS, capacity_bits, mcs_table, select_mcs
from gesco.digital.source import (
    decode_image_bytes,
    encode_image,
    exact_received_frame,
    fit_image,
    frame_bytes,
    frame_from_bytes,
    lost_image,
)
from gesco.errors import GescoInputError, ImageDecodeError, PayloadError
from gesco.link import encode_image_frame, received_maps
from gesco.semantics.classes import get_class_space
from gesco.wire.frames import frame_channel_symbols


def test_capacity_awgn_and_ergodic_rayleigh():
    assert capacity_bits(1.0, fading=False) == pytest.approx(1.0)
    assert capacity_bits(0.0, fading=True) == pytest.approx(0.0)
    # E[log2(1 + g)] for g ~ Exp(1) = e E1(1) / ln 2 = 0.8600 (E1(1) = 0.219384)
    assert capacity_bits(1.0, fading=True) == pytest.approx(math.e * 0.2193839344 / math.log(2), rel=1e-4)
    # Jensen: fading costs capacity at every SNR
    for snr in (0.1, 1.0, 10.0, 1000.0):
        assert capacity_bits(snr, True) < capacity_bits(snr, False)


def test_mcs_selection_is_monotone_and_below_capacity():
    prev = 0.0
    for p in np.arange(-5.0, 40.0, 0.5):
        m = select_mcs(float(p), "awgn", gap_db=3.0)
        assert m.efficiency >= prev - 1e-12
        prev = m.efficiency
        if m != mcs_table()[0]:  # the most robust MCS is the fallback when nothing fits
            assert m.efficiency <= capacity_bits(10 ** ((p - 3.0) / 10), False) + 1e-12
    assert select_mcs(100.0).efficiency == max(x.efficiency for x in mcs_table())
    assert select_mcs(10.0, "rayleigh").efficiency < select_mcs(10.0, "awgn").efficiency
    assert select_mcs(5.0, gap_db=3.0).name == "QPSK r=0.667"  # C(2 dB) = 1.37 bit/symbol
    with pytest.raises(GescoInputError):
        select_mcs(float("nan"))


def test_code_layout_counts_channel_uses_like_the_analog_rows():
    mcs = MCS(4, 0.5)
    lay = code_layout(12_000, mcs)
    assert lay.blocks == math.ceil(12_000 / (K_MAX - CRC_BITS))
    assert lay.blocks * lay.k_info >= 12_000 and lay.k == lay.k_info + CRC_BITS
    assert lay.n % 4 == 0 and lay.k / lay.n <= 0.5 + 1e-9
    low = code_layout(12_001, MCS(2, 0.2))
    assert low.n % 2 == 0 and 0.2 <= low.k / low.n < 0.2 + 2 / low.n + 1e-9
    assert lay.channel_uses == 2 * lay.blocks * lay.n // 4  # two real uses per complex symbol
    assert channel_uses_for(1500, mcs) == lay.channel_uses
    with pytest.raises(PayloadError):
        code_layout(0, mcs)


@pytest.fixture(scope="module")
def scene():
    return generate_scene(5, 64, 128)


def test_image_files_round_trip_and_fit_the_budget(scene):
    for fmt in ("jpeg", "webp", "png"):
        data = encode_image(scene.image, fmt, 90)
        out = decode_image_bytes(data, (64, 128))
        assert out.shape == (64, 128, 3)
        if fmt == "png":
            assert np.array_equal(out, scene.image)
    mcs = select_mcs(5.0)
    budget = 3 * 64 * 128
    for fmt in ("jpeg", "webp"):
        f = fit_image(scene.image, fmt, mcs, budget)
        assert f.fits and f.channel_uses <= budget and 1 <= f.quality <= 100
        # the next quality up (if any) would not fit: the choice is the best that fits
        if f.quality < 100:
            assert all(channel_uses_for(len(encode_image(scene.image, fmt, q)), mcs) > budget
                       for q in range(f.quality + 1, 101))
    assert not fit_image(scene.image, "jpeg", mcs, 10).fits
    png = fit_image(scene.image, "png", mcs, budget)
    assert png.quality is None and png.channel_uses > budget  # lossless: takes what it needs
    with pytest.raises(ImageDecodeError):
        decode_image_bytes(b"\x00" * 40, (64, 128))
    with pytest.raises(GescoInputError):
        encode_image(scene.image, "bpg")
    assert lost_image((4, 5)).shape == (4, 5, 3)


def test_semantic_frame_bytes_round_trip_to_exact_maps(scene):
    frame, _ = encode_image_frame(scene.image, scene.label, scene.instance, space=get_class_space("cityscapes"),
                                  resolution=(64, 128), frame_id="f" * 32)
    data = frame_bytes(frame)
    # the lean link header + payload: exactly the counted bits, far less than the simulation's message
    assert 8 * len(data) == sum(frame_bits(frame)) and len(data) < len(frame.SerializeToString())
    back = frame_from_bytes(data, frame.id, "cityscapes")
    for name in ("id", "height", "width", "num_classes", "class_space", "class_ids", "has_edges", "codec", "payload"):
        assert getattr(back, name) == getattr(frame, name), name
    maps = received_maps(exact_received_frame(back))
    assert np.array_equal(maps.numpy(), frame_channel_symbols(frame).astype(np.float32))
    for bad in (b"\xff\xff\xff", data[:-1], data + b"\x00", data[:5]):
        with pytest.raises(PayloadError):
            frame_from_bytes(bad, frame.id, "cityscapes")
