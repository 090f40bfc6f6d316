"""The appearance side channel's automatic repetition (gesco.appearance.choose_repeat).

The choice rests on one formula, ``p = Q(sqrt(r) / (2 sigma_s))`` with the channel model's
noise per symbol ``sigma_s`` (``gesco.channel.ChannelModel.symbol_noise_std``); the statistical
tests below check that formula against the real channel code, then the choice against it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gesco.appearance import (
    REPEAT_AUTO,
    REPEAT_RANGE,
    TARGET_BIT_ERROR_RATE,
    AppearanceError,
    AppearanceSettings,
    choose_repeat,
    residual_bit_error_rate,
    transmit_appearance_bits,
)
from gesco.data.synthetic import generate_scene
from gesco.link import TransmitSettings, apply_channel, encode_image_frame, frame_appearance_bits
from gesco.semantics.classes import get_class_space

SPACE = get_class_space("cityscapes")
RES = (32, 64)


def bits_with_ones(n: int, share: float, seed: int = 0) -> np.ndarray:
    """``n`` bits of which exactly ``round(share n)`` are ones, shuffled."""
    b = np.zeros(n, np.uint8)
    b[: round(share * n)] = 1
    return np.random.default_rng(seed).permutation(b)


def awgn_rate(snr_db: float, share: float, r: int) -> float:
    """The formula written out for AWGN, independently of the library: ``Q(sqrt(r SNR / (4 P)))``."""
    return 0.5 * math.erfc(math.sqrt(r * 10 ** (snr_db / 10) / (4 * share)) / math.sqrt(2))


@pytest.mark.parametrize("channel, psnr, share, r", [
    ("awgn", 1.0, 0.5, 1),
    ("awgn", 1.0, 0.5, 4),
    ("awgn", 1.0, 0.2, 2),   # fewer ones: less power to normalise away, less noise in the signal's units
    ("awgn", -3.0, 0.5, 8),
    ("authors-code", 5.0, 0.5, 2),  # the authors' table: std 0.6, no normalisation
])
def test_formula_matches_the_real_channel_code(channel, psnr, share, r):
    """Empirical bit-error rate after averaging, on the channel model the link uses, within
    4 binomial standard errors (+ 1e-4) of :func:`residual_bit_error_rate`."""
    n = 40_000
    bits = bits_with_ones(n, share)
    settings = AppearanceSettings("mean", 6, r)
    got, uses = transmit_appearance_bits(bits, settings, channel=channel, psnr_db=psnr,
                                         generator=torch.Generator().manual_seed(11))
    assert uses == r * n
    empirical = float((got != bits).mean())
    p = residual_bit_error_rate(bits, r, channel=channel, psnr_db=psnr)
    assert 0.005 < p < 0.4  # a regime where the test can tell a wrong formula from a right one
    assert abs(empirical - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-4, (empirical, p)
    if channel == "awgn":
        assert p == pytest.approx(awgn_rate(psnr, share, r), rel=1e-9)
    # the errors hit zeros and ones alike (threshold 1/2 midway between the levels)
    for level in (0, 1):
        sel = bits == level
        e = float((got[sel] != level).mean())
        assert abs(e - p) <= 4 * math.sqrt(p * (1 - p) / sel.sum()) + 1e-4, (level, e, p)


@pytest.mark.parametrize("psnr, share", [(100.0, 0.5), (20.0, 0.5), (10.0, 0.6), (5.0, 0.5), (3.0, 0.3), (1.0, 0.45)])
def test_choice_is_the_smallest_repeat_under_the_target(psnr, share):
    bits = bits_with_ones(90, share)
    choice = choose_repeat(bits, channel="awgn", psnr_db=psnr)
    assert choice.met and choice.target == TARGET_BIT_ERROR_RATE
    assert choice.bit_error_rate == residual_bit_error_rate(bits, choice.repeat, channel="awgn", psnr_db=psnr)
    assert choice.bit_error_rate <= TARGET_BIT_ERROR_RATE
    if choice.repeat > REPEAT_RANGE[0]:
        assert residual_bit_error_rate(bits, choice.repeat - 1, channel="awgn", psnr_db=psnr) > TARGET_BIT_ERROR_RATE
    # against the formula written out: r = ceil(4 P z^2 / SNR) with Q(z) = target
    z = 3.090232306167813  # Q^-1(1e-3)
    want = max(1, math.ceil(4 * bits.mean() * z * z / 10 ** (psnr / 10) - 1e-9))
    assert choice.repeat == want


def test_measured_regimes_give_the_measured_repeats():
    """1 dB with half the bits ones needs 16 (the study's good row), 100 dB needs 1."""
    half = bits_with_ones(18, 0.5)
    assert choose_repeat(half, channel="awgn", psnr_db=1.0).repeat == 16
    assert choose_repeat(half, channel="awgn", psnr_db=100.0).repeat == 1
    assert choose_repeat(np.zeros(18, np.uint8), channel="awgn", psnr_db=-20.0).repeat == 1  # nothing to flip


def test_a_missed_target_is_loud():
    choice = choose_repeat(bits_with_ones(18, 0.5), channel="awgn", psnr_db=-5.0)
    assert (choice.repeat, choice.met) == (REPEAT_RANGE[1], False)
    assert choice.bit_error_rate > TARGET_BIT_ERROR_RATE
    assert "above the target 0.001 even at the largest repeat 16: expect wrong colours" in choice.note(-5.0, "awgn")


def test_fading_channels_need_the_repeat_given():
    with pytest.raises(AppearanceError, match="cannot be chosen for channel 'rayleigh'.*give appearance_repeat"):
        choose_repeat(bits_with_ones(18, 0.5), channel="rayleigh", psnr_db=10.0)


@pytest.fixture(scope="module")
def scene():
    return generate_scene(5, 32, 64)


def send(scene, psnr: float, repeat: int = REPEAT_AUTO, channel: str = "awgn"):
    transmit = TransmitSettings(psnr_db=psnr, seed=3, channel=channel, appearance="classes", appearance_bits=4,
                                appearance_repeat=repeat)
    frame, _ = encode_image_frame(scene.image, scene.label, scene.instance, space=SPACE, resolution=RES,
                                  frame_id="r", transmit=transmit)
    return frame


@pytest.mark.parametrize("psnr", [100.0, 5.0, 1.0])
def test_sender_chooses_and_the_budget_counts_the_chosen_repeat(scene, psnr):
    frame = send(scene, psnr)
    bits = frame_appearance_bits(frame, AppearanceSettings("classes", 4, 1))
    choice = choose_repeat(bits, channel="awgn", psnr_db=psnr)
    assert frame.appearance.repeat == choice.repeat and choice.met
    assert not [n for n in frame.upload.notes if n.startswith("appearance_repeat")]  # warnings only when missed
    rx = apply_channel(frame)
    assert rx.report.appearance_bits == bits.size
    assert rx.report.appearance_channel_uses == choice.repeat * bits.size
    assert TransmitSettings.from_frame(rx.header).appearance_repeat == choice.repeat


def test_a_given_repeat_overrides_the_choice(scene):
    frame = send(scene, 1.0, repeat=2)
    assert frame.appearance.repeat == 2
    assert not [n for n in frame.upload.notes if n.startswith("appearance_repeat")]


def test_sender_warns_when_even_the_largest_repeat_misses_the_target(scene):
    frame = send(scene, -6.0)
    bits = frame_appearance_bits(frame, AppearanceSettings("classes", 4, 1))
    choice = choose_repeat(bits, channel="awgn", psnr_db=-6.0)
    assert not choice.met and frame.appearance.repeat == REPEAT_RANGE[1]
    assert choice.note(-6.0, "awgn") in frame.upload.notes
    assert "expect wrong colours" in choice.note(-6.0, "awgn")


def test_sender_refuses_auto_on_a_fading_channel(scene):
    with pytest.raises(AppearanceError, match="cannot be chosen for channel 'rayleigh'"):
        send(scene, 10.0, channel="rayleigh")
    assert send(scene, 10.0, repeat=4, channel="rayleigh").appearance.repeat == 4
