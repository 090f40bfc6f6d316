"""Tests of gesco.link: the sender, channel and receiver stages without the network."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from gesco.codecs import frame_bits
from gesco.data.aspect import AspectReport
from gesco.data.synthetic import generate_scene
from gesco.data.transforms import resize_labels
from gesco.errors import ChannelParameterError, ClassIdError, GescoInputError, ImageDecodeError, ShapeError
from gesco.link import (
    ImageTooLargeError,
    TransmitSettings,
    UnsupportedImageError,
    apply_channel,
    budget_record,
    codec_choice,
    colour_labels,
    decode_image,
    decode_label_map,
    encode_image_frame,
    encode_png,
    image_header,
    label_from_maps,
    received_conditioning,
    received_maps,
    receiver_maps,
    stage_seed,
    upload_info,
    upload_report,
)
from gesco.semantics.classes import get_class_space
from gesco.semantics.instances import derive_instances
from gesco.semantics.layout import full_conditioning
from gesco.wire.frames import codec_params_dict, frame_channel_symbols

SPACE = get_class_space("cityscapes")
RES = (32, 64)


@pytest.fixture(scope="module")
def scene():
    return generate_scene(5, 64, 128)


def _frame(scene, **kw):
    kw.setdefault("transmit", TransmitSettings(psnr_db=10.0, seed=3))
    frame, timings = encode_image_frame(scene.image, scene.label, scene.instance, space=SPACE, resolution=RES,
                                        frame_id="job-1", **kw)
    return frame, timings


# ---------------------------------------------------------------- sender stage
def test_encode_resizes_and_keeps_present_classes(scene):
    frame, timings = _frame(scene)
    label = resize_labels(scene.label, *RES)
    assert (frame.height, frame.width) == RES
    assert list(frame.class_ids) == sorted(np.unique(label).tolist())
    assert frame.has_edges and frame.class_space == "cityscapes" and frame.num_classes == 35
    assert frame.png_bits > frame.jpeg_bits > 0 and frame.jpeg_quality == 75
    assert frame.transmit.psnr_db == 10.0 and frame.transmit.seed == 3 and frame.transmit.fds
    assert set(timings) == {"resize", "segment", "encode", "reference"}


def test_encode_uses_the_segmenter_without_a_label(scene):
    calls = []

    class Fake:
        def predict_numpy(self, image):
            calls.append(image.shape)
            out = np.full(image.shape[:2], 7, np.uint8)
            out[: image.shape[0] // 2] = 23
            return out

    frame, _ = encode_image_frame(scene.image, space=SPACE, resolution=RES, frame_id="x", segmenter=Fake())
    assert calls == [(*RES, 3)]  # segments the resized image
    assert list(frame.class_ids) == [7, 23]
    assert frame.has_edges and frame.upload.edges == "derived"  # edges derived from the segmented map


def test_edges_uploaded_derived_or_none(scene):
    """The frame carries the uploaded instance map's edges, else those of the instance map
    derived from the label map (at the model resolution), else none when asked; it says which."""
    uploaded, _ = _frame(scene)
    derived, _ = encode_image_frame(scene.image, scene.label, space=SPACE, resolution=RES, frame_id="x",
                                    transmit=TransmitSettings(psnr_db=100.0))
    none, _ = encode_image_frame(scene.image, scene.label, space=SPACE, resolution=RES, frame_id="x",
                                 derive_edges=False)
    assert [f.upload.edges for f in (uploaded, derived, none)] == ["uploaded", "derived", "none"]
    assert uploaded.has_edges and derived.has_edges and not none.has_edges
    assert [upload_report(f.upload)["edges"] for f in (uploaded, derived, none)] == ["uploaded", "derived", "none"]
    label = resize_labels(scene.label, *RES)
    want = full_conditioning(label, SPACE, derive_instances(label, SPACE))
    got = received_conditioning(apply_channel(derived), fds=False)
    assert torch.allclose(got, want, atol=2e-3)  # float16 symbols + 1e-5 noise std
    assert not torch.allclose(got[-1], full_conditioning(label, SPACE)[-1], atol=0.5)  # the edge channel is not empty
    fit = AspectReport("crop", (2, 2), (2, 2), False, (0, 0, 2, 2), (0, 0, 2, 2))
    with pytest.raises(GescoInputError, match="edges must be one of"):
        upload_info(fit, False, None, "some")


def test_encode_refuses_bad_maps(scene):
    with pytest.raises(ShapeError, match="label map is 64x127"):
        encode_image_frame(scene.image, scene.label[:, :127], space=SPACE, resolution=RES, frame_id="x")
    bad = scene.label.astype(np.int64)
    bad[0, 0] = 40
    with pytest.raises(ClassIdError, match="40"):
        encode_image_frame(scene.image, bad, space=SPACE, resolution=RES, frame_id="x")
    with pytest.raises(GescoInputError, match="no segmenter"):
        encode_image_frame(scene.image, space=SPACE, resolution=RES, frame_id="x")
    with pytest.raises(GescoInputError, match="needs its label map"):
        encode_image_frame(scene.image, None, scene.instance, space=SPACE, resolution=RES, frame_id="x")


def test_codec_choice():
    assert codec_choice("context", 1) == ("context", {})
    assert codec_choice("context", 4) == ("downsample", {"factor": 4})  # the default inner codec
    assert codec_choice("contour", 4) == ("downsample", {"factor": 4, "inner": "contour"})
    assert codec_choice("zlib", 2) == ("downsample", {"factor": 2, "inner": "zlib"})
    with pytest.raises(GescoInputError):
        codec_choice("nope", 1)
    with pytest.raises(GescoInputError):
        codec_choice("contour", 0)


#: sha256 (first 16 hex digits) of a frame's codec, codec_params, payload and transmit message for
#: scene 7 at 32 x 64 with each lossless codec at downsample 1 and 4, recorded when the codec was
#: still passed to encode_image_frame as ``codec`` / ``codec_params`` beside ``transmit``
FROZEN_CODEC_FRAMES = {
    "context/1": "9b02237e3fad24e3", "context/4": "707eae682243e402", "contour/1": "0e24963eb31e3985",
    "contour/4": "190f95f78235967a", "lzma/1": "ae2364470b51d8d7", "lzma/4": "7a144171de2836d4",
    "raw/1": "adf98d0389b12e60", "raw/4": "5a76f559103db3ad", "zlib/1": "6f3cb3f1910387a1",
    "zlib/4": "767ee749ae7d750b",
}


def test_the_frame_codec_comes_from_the_transmission_settings():
    """``transmit.codec`` / ``transmit.downsample`` are the one source of the frame's codec
    (:func:`codec_choice` derives its parameters): the same frames, bit for bit, as when the
    codec was passed separately; an unusable pair is refused before any work."""
    import hashlib

    from gesco.transmit_fields import FIELDS

    s = generate_scene(7, 48, 96)
    got = {}
    for codec in FIELDS["codec"].choices:
        for k in (1, 4):
            frame, _ = encode_image_frame(s.image, s.label, s.instance, space=SPACE, resolution=RES, frame_id="f",
                                          transmit=TransmitSettings(steps=2, codec=codec, downsample=k))
            assert (frame.codec, codec_params_dict(frame.codec_params)) == codec_choice(codec, k)
            h = hashlib.sha256(frame.codec.encode() + frame.codec_params.SerializeToString(deterministic=True)
                               + frame.payload + frame.transmit.SerializeToString(deterministic=True))
            got[f"{codec}/{k}"] = h.hexdigest()[:16]
    assert got == FROZEN_CODEC_FRAMES
    with pytest.raises(GescoInputError, match="codec"):
        encode_image_frame(s.image, s.label, space=SPACE, resolution=RES, frame_id="f",
                           transmit=TransmitSettings(codec="nope"))


# ---------------------------------------------------------------- channel stage
def test_channel_counts_bits_and_is_reproducible(scene):
    frame, _ = _frame(scene)
    rx = apply_channel(frame)
    payload, header = frame_bits(frame)
    n = len(frame.class_ids) + 1
    assert (rx.report.payload_bits, rx.report.header_bits) == (payload, header)
    assert rx.report.channel_uses == n * RES[0] * RES[1]
    assert list(rx.symbols_shape) == [n, *RES]
    assert rx.header.payload == b"" and rx.header.power_scale == pytest.approx(rx.report.power_scale)
    # Eq. (1) with P = 1: sigma^2 = 10^(-PSNR/10)
    assert rx.report.noise_variance == pytest.approx(10 ** (-1.0), rel=1e-6)
    assert abs(rx.report.measured_snr_db - 10.0) < 0.2  # 22k symbols: the estimate is within ~0.05 dB
    assert apply_channel(frame).symbols == rx.symbols  # the frame's seed fixes the noise
    frame.transmit.seed = 4
    assert apply_channel(frame).symbols != rx.symbols


def test_channel_refuses_bad_settings(scene):
    frame, _ = _frame(scene)
    frame.transmit.psnr_db = 300.0
    with pytest.raises(ChannelParameterError, match="outside"):
        apply_channel(frame)
    frame.transmit.psnr_db = 10.0
    frame.transmit.channel = "fading"
    with pytest.raises(ChannelParameterError, match="unknown channel model 'fading'; known: .*'rayleigh'"):
        apply_channel(frame)
    frame.transmit.channel = "rayleigh"
    frame.transmit.channel_params["block_length"] = "-3"
    with pytest.raises(ChannelParameterError, match="block_length"):
        apply_channel(frame)
    frame.transmit.channel_params.clear()
    frame.transmit.channel_params["colour"] = "red"
    with pytest.raises(ChannelParameterError, match="colour.*Parameters of 'rayleigh'"):
        apply_channel(frame)
    frame.transmit.channel_params.clear()
    frame.transmit.channel = "authors-code"
    frame.transmit.psnr_db = 12.0  # not in the authors' table
    with pytest.raises(ChannelParameterError):
        apply_channel(frame)


def test_fading_channel_through_the_link_and_the_budget_record(scene):
    frame, _ = _frame(scene)
    frame.transmit.channel = "rayleigh"
    frame.transmit.channel_params["block_length"] = "64"
    frame.transmit.channel_params["equalizer"] = "zf"
    rx = apply_channel(frame)
    assert rx.report.channel == "rayleigh"
    assert rx.report.channel_uses == frame_channel_symbols(frame).size
    record = budget_record(frame, rx.report)
    assert record["channel"] == "rayleigh"
    assert record["channel_params"] == {"block_length": 64, "equalizer": "zf"}
    assert TransmitSettings.from_message(frame.transmit).channel_params == {"block_length": "64", "equalizer": "zf"}
    # the same settings from Python objects give the same message
    msg = TransmitSettings(channel="rayleigh", channel_params={"block_length": 64, "equalizer": "zf"}).to_message()
    assert dict(msg.channel_params) == {"block_length": "64", "equalizer": "zf"}
    # 100 dB with perfect CSI: the maps come back
    frame.transmit.psnr_db = 100.0
    maps = received_maps(apply_channel(frame))
    assert torch.allclose(maps, torch.from_numpy(frame_channel_symbols(frame)).float(), atol=1e-2)
    # without CSI they do not
    frame.transmit.channel = "rayleigh-nocsi"
    del frame.transmit.channel_params["equalizer"]
    maps = received_maps(apply_channel(frame))
    assert not torch.allclose(maps, torch.from_numpy(frame_channel_symbols(frame)).float(), atol=0.2)


def test_stage_seeds_differ():
    assert stage_seed(0, "channel") != stage_seed(0, "sampling")
    assert stage_seed(1, "channel") != stage_seed(0, "channel")
    assert stage_seed(2**63 - 1, "channel") < 2**63


# ---------------------------------------------------------------- receiver stage
def test_clean_channel_gives_the_clean_conditioning(scene):
    frame, _ = _frame(scene, transmit=TransmitSettings(psnr_db=100.0))
    cond = received_conditioning(apply_channel(frame), fds=False)
    clean = full_conditioning(resize_labels(scene.label, *RES), SPACE, resize_labels(scene.instance, *RES))
    assert cond.shape == (36, *RES)
    assert torch.allclose(cond, clean, atol=2e-3)  # float16 symbols + 1e-5 noise std


def test_fds_and_pad_at_low_psnr(scene):
    frame, _ = _frame(scene, transmit=TransmitSettings(psnr_db=1.0))
    maps = receiver_maps(apply_channel(frame))
    absent = [c for c in range(35) if c not in set(frame.class_ids)]
    assert torch.all(maps.conditioning[absent] == 0)  # Pad: exact zeros
    k = len(frame.class_ids)
    # FDS lowers the noise: the denoised maps are closer to the sent ones than the received
    sent = torch.from_numpy(full_conditioning(resize_labels(scene.label, *RES), SPACE).numpy()[list(frame.class_ids)])
    err_rx = (maps.received[:k] - sent).abs().mean()
    err_fds = (maps.denoised[:k] - sent).abs().mean()
    assert err_fds < 0.8 * err_rx


def test_downsample_codec_sends_fewer_symbols(scene):
    frame, _ = _frame(scene, transmit=TransmitSettings(psnr_db=100.0, codec="context", downsample=4))
    assert (frame.codec, codec_params_dict(frame.codec_params)) == codec_choice("context", 4)
    rx = apply_channel(frame)
    assert list(rx.symbols_shape)[1:] == [RES[0] // 4, RES[1] // 4]
    assert received_conditioning(rx).shape == (36, *RES)


def test_label_from_maps_and_colours():
    maps = torch.zeros(3, 2, 2)
    maps[0, 0] = 1.0
    maps[1, 1] = 0.9
    maps[2] = 5.0  # the edge map does not vote
    label = label_from_maps(maps, [7, 26])
    assert label.tolist() == [[7, 7], [26, 26]]
    rgb = colour_labels(label, SPACE)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == SPACE.colors[7]


def test_budget_record(scene):
    frame, _ = _frame(scene)
    rec = budget_record(frame, apply_channel(frame).report)
    assert rec["total_bits"] == rec["payload_bits"] + rec["header_bits"]
    assert rec["reduction_png_pct"] == pytest.approx(100 * (1 - rec["total_bits"] / frame.png_bits), abs=1e-3)
    assert rec["present_classes"] == list(frame.class_ids)
    assert rec["channel"] == "awgn" and rec["psnr_db"] == 10.0 and math.isfinite(rec["measured_snr_db"])
    assert rec["channel_uses_per_pixel"] == len(frame.class_ids) + 1


# ---------------------------------------------------------------- uploads
def test_decode_png_and_jpeg(scene):
    png = encode_png(scene.image)
    assert np.array_equal(decode_image(png), scene.image)
    ok, jpg = cv2.imencode(".jpg", scene.image[:, :, ::-1])
    assert image_header(jpg.tobytes()) == ("jpeg", 64, 128)
    assert decode_image(jpg.tobytes()).shape == (64, 128, 3)
    grey = encode_png(scene.image[:, :, 0])
    assert decode_image(grey).shape == (64, 128, 3)


def test_decode_refuses_bad_files(scene):
    png = encode_png(scene.image)
    with pytest.raises(UnsupportedImageError):
        decode_image(b"hello, this is not an image")
    with pytest.raises(UnsupportedImageError):
        decode_image(b"")
    with pytest.raises(ImageDecodeError, match="corrupt PNG") as err:
        decode_image(png[: len(png) // 2])
    assert not isinstance(err.value, UnsupportedImageError)
    with pytest.raises(ImageDecodeError, match="corrupt JPEG"):
        decode_image(b"\xff\xd8\xff\xe0\x00")
    with pytest.raises(ImageTooLargeError, match="pixels"):
        decode_image(png, max_pixels=1000)
    with pytest.raises(ImageTooLargeError, match="bytes"):
        decode_image(png, max_bytes=100)


def test_decode_label_maps(scene):
    label = decode_label_map(encode_png(scene.label))
    assert label.dtype == np.uint8 and np.array_equal(label, scene.label)
    ok, inst16 = cv2.imencode(".png", scene.instance.astype(np.uint16))
    assert np.array_equal(decode_label_map(inst16.tobytes(), "instance map"), scene.instance)
    ok, jpg = cv2.imencode(".jpg", scene.label)
    with pytest.raises(UnsupportedImageError, match="must be a PNG"):
        decode_label_map(jpg.tobytes())
    with pytest.raises(ShapeError, match="differing colour channels"):
        decode_label_map(encode_png(scene.image))
