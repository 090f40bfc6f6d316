"""The appearance side channel through gesco.link: frame, channel, budget, receiver, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gesco.appearance import AppearanceError, AppearanceSettings, dequantise, quantise
from gesco.data.synthetic import generate_scene
from gesco.link import (
    TransmitSettings,
    appearance_target,
    apply_channel,
    budget_record,
    encode_image_frame,
    frame_appearance,
    received_appearance,
    receiver_maps,
)
from gesco.semantics.classes import get_class_space
from gesco.wire import gesco_pb2 as pb

SPACE = get_class_space("cityscapes")
RES = (32, 64)


@pytest.fixture(scope="module")
def scene():
    return generate_scene(5, 32, 64)


def frame_of(scene, appearance=None, psnr=100.0):
    side = {} if appearance is None else {"appearance": appearance.mode, "appearance_bits": appearance.bits,
                                          "appearance_repeat": appearance.repeat}
    frame, _ = encode_image_frame(scene.image, scene.label, scene.instance, space=SPACE, resolution=RES,
                                  frame_id="a", transmit=TransmitSettings(psnr_db=psnr, seed=3, **side))
    return frame


def test_off_is_the_papers_frame(scene):
    plain = frame_of(scene)
    off = frame_of(scene, AppearanceSettings("off"))
    assert plain.SerializeToString() == off.SerializeToString()
    assert frame_appearance(plain) is None and not plain.HasField("appearance")
    rx = apply_channel(plain)
    assert received_appearance(rx) is None and rx.report.appearance_bits == 0
    rec = budget_record(plain, rx.report)
    assert rec["appearance_bits"] == 0 and rec["appearance"] is None
    assert rec["total_bits"] == rx.report.payload_bits + rx.report.header_bits


def test_classes_round_trip_counted_in_the_budget(scene):
    st = AppearanceSettings("classes", 5, 2)
    frame = frame_of(scene, st)
    k = len(frame.class_ids)
    rx = apply_channel(frame)
    plain = apply_channel(frame_of(scene))
    assert rx.report.appearance_bits == 3 * 5 * k
    assert rx.report.appearance_channel_uses == 2 * 3 * 5 * k
    assert rx.report.channel_uses == plain.report.channel_uses + 2 * 3 * 5 * k
    assert rx.symbols == plain.symbols  # the maps get the same noise with or without the side channel
    assert not rx.header.appearance_bits  # the bits travel as symbols, not in the header
    rec = budget_record(frame, rx.report)
    assert rec["total_bits"] == rx.report.payload_bits + rx.report.header_bits + 3 * 5 * k
    back = TransmitSettings.from_frame(rx.header)
    assert (back.appearance, back.appearance_bits, back.appearance_repeat) == ("classes", 5, 2)
    assert TransmitSettings.from_frame(frame_of(scene)).appearance == "off"
    assert rec["appearance"] == {"mode": "classes", "bits": 5, "repeat": 2}
    got = received_appearance(rx)
    want = np.stack([scene.image[scene.label == c].mean(0) for c in frame.class_ids])
    assert np.allclose(got.colours, dequantise(quantise(want, 5), 5))
    assert list(got.class_ids) == list(frame.class_ids)
    maps = receiver_maps(rx)
    target = appearance_target([maps], [got], SPACE.num_classes)
    assert target.regions.shape == (1, *RES)
    assert torch.isfinite(target.class_mean[0, list(frame.class_ids), 0]).all()
    assert appearance_target([maps], [None], SPACE.num_classes) is None


def test_noisy_channel_flips_bits_and_repetition_repairs_them(scene):
    colours = {}
    for r in (1, 16):
        rx = apply_channel(frame_of(scene, AppearanceSettings("classes", 6, r), psnr=0.0))
        colours[r] = received_appearance(rx).colours
    exact = dequantise(quantise(np.stack([scene.image[scene.label == c].mean(0)
                                          for c in frame_of(scene).class_ids]), 6), 6)
    assert np.abs(colours[1] - exact).max() > 10  # uncoded bits at 0 dB: ~24 % wrong
    assert np.abs(colours[16] - exact).mean() < np.abs(colours[1] - exact).mean() / 4


def test_bad_side_channel_frames_are_refused_with_a_named_error(scene):
    frame = frame_of(scene, AppearanceSettings("mean", 6))
    bad = pb.SemanticFrame()
    bad.CopyFrom(frame)
    bad.appearance.mode = "texture"
    with pytest.raises(AppearanceError, match="appearance mode must be one of"):
        apply_channel(bad)
    bad.CopyFrom(frame)
    bad.appearance_bits = b"\x00" * 5
    with pytest.raises(AppearanceError, match="appearance_bits holds 5 bytes; mode 'mean' at 6 bits .* needs 3"):
        apply_channel(bad)
    bad.CopyFrom(frame)
    bad.appearance.repeat = 0
    with pytest.raises(AppearanceError, match=r"repeat 0 \(automatic\) must be chosen before the frame is sent"):
        apply_channel(bad)
    bad.CopyFrom(frame)
    bad.ClearField("appearance")
    with pytest.raises(AppearanceError, match="appearance bits but no appearance mode"):
        apply_channel(bad)
    rx = apply_channel(frame)
    rx.appearance_symbols = rx.appearance_symbols[:-2]
    with pytest.raises(AppearanceError, match="the frame's side channel sends 18 float16 symbols"):
        received_appearance(rx)
    with pytest.raises(AppearanceError, match="appearance mode must be one of"):
        frame_of(scene, AppearanceSettings("rgb"))
