"""Aspect-ratio fitting of uploads: centre crop, letterbox, stretch, always reported."""

from __future__ import annotations

import numpy as np
import pytest

from gesco.data.aspect import PAD_LABEL, fit_aspect, plan_aspect
from gesco.errors import GescoInputError


def test_square_upload_is_centre_cropped_to_its_middle_rows():
    r = plan_aspect((512, 512), (64, 128), "crop")
    assert r.adjusted and r.mode == "crop"
    assert r.source_box == (128, 0, 384, 512)  # 256 rows x 512 columns: ratio 2 like 64x128
    assert r.content_box == (0, 0, 64, 128)
    assert "centre-cropped" in r.note and "rows 128-384" in r.note


@pytest.mark.parametrize("mode", ["crop", "letterbox", "stretch"])
def test_notes_name_sizes_height_by_width_like_the_model(mode):
    r = plan_aspect((600, 512), (64, 128), mode)  # a portrait photo: 600 rows, 512 columns
    assert "the 600x512 upload" in r.note and "64x128" in r.note
    assert "512x600" not in r.note and "128x64" not in r.note
    if mode == "letterbox":  # scaled by 64/600 to 64 rows x 55 columns
        assert "scaled to 64x55" in r.note


def test_wide_upload_is_cropped_to_its_middle_columns():
    r = plan_aspect((100, 400), (64, 128), "crop")
    assert r.source_box == (0, 100, 100, 300)


def test_crop_keeps_the_centre_content():
    image = np.zeros((512, 512, 3), np.uint8)
    image[128:384] = 200  # the band the crop keeps
    label = np.full((512, 512), 7, np.int64)
    label[:128] = 11
    out, lab, inst, report = fit_aspect(image, label, None, (64, 128), "crop")
    assert out.shape == (64, 128, 3) and lab.shape == (64, 128) and inst is None
    assert (out == 200).all() and (lab == 7).all()


def test_letterbox_scales_to_fit_and_pads_with_black_and_label_zero():
    image = np.full((512, 512, 3), 255, np.uint8)
    label = np.full((512, 512), 7, np.int32)
    instance = np.full((512, 512), 26001, np.int32)
    out, lab, inst, report = fit_aspect(image, label, instance, (64, 128), "letterbox")
    assert report.adjusted and report.content_box == (0, 32, 64, 96)
    assert out.shape == (64, 128, 3) and lab.dtype == np.int32
    assert (out[:, 32:96] == 255).all() and (out[:, :32] == 0).all() and (out[:, 96:] == 0).all()
    assert (lab[:, 32:96] == 7).all() and (lab[:, :32] == PAD_LABEL).all()
    assert (inst[:, 32:96] == 26001).all() and (inst[:, 96:] == 0).all()
    mask = report.content_mask()
    assert mask.sum() == 64 * 64 and mask[:, 32:96].all()


def test_stretch_is_reported_as_distorting():
    r = plan_aspect((512, 512), (64, 128), "stretch")
    assert r.adjusted and "stretched" in r.note and "distorted" in r.note
    out, *_ = fit_aspect(np.zeros((512, 512, 3), np.uint8), None, None, (64, 128), "stretch")
    assert out.shape == (64, 128, 3)


@pytest.mark.parametrize("mode", ["crop", "letterbox", "stretch"])
def test_same_ratio_is_a_plain_resize(mode):
    image = np.random.default_rng(0).integers(0, 255, (256, 512, 3), dtype=np.uint8)
    out, _, _, r = fit_aspect(image, None, None, (64, 128), mode)
    assert not r.adjusted and r.source_box == (0, 0, 256, 512) and r.content_box == (0, 0, 64, 128)
    from gesco.data.transforms import resize_image

    assert np.array_equal(out, resize_image(image, 64, 128))


def test_unknown_mode_is_refused():
    with pytest.raises(GescoInputError, match="aspect mode must be one of"):
        plan_aspect((10, 10), (64, 128), "squash")
