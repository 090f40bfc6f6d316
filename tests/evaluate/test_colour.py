"""Tests of gesco.evaluate.metrics.colour: whole-image and per-class colour errors (0-255 units)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gesco.errors import DTypeError, GescoInputError, ShapeError
from gesco.evaluate.metrics import MIN_CLASS_PIXELS, colour_errors

H, W = 16, 24
ROAD, SKY, CAR, POLE = 7, 23, 26, 17


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 (H, W, 3) image in [20, 235] and a label map: sky on top, road below, a car, a 3-pixel pole."""
    rng = np.random.default_rng(seed)
    image = rng.integers(20, 236, size=(H, W, 3), dtype=np.uint8)
    labels = np.full((H, W), ROAD, dtype=np.int64)
    labels[: H // 2] = SKY
    labels[10:14, 4:12] = CAR  # 32 pixels
    labels[2:5, 20] = POLE  # 3 pixels: below MIN_CLASS_PIXELS
    return image, labels


def _to_float(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (1, 3, H, W) in [-1, 1], as the evaluation's tensors."""
    return torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0


def test_identical_images_give_zero() -> None:
    image, labels = _scene()
    for g, s in ((image, image), (_to_float(image), _to_float(image))):
        res = colour_errors(g, s, labels)
        assert res.mean_colour_error.tolist() == [0.0]
        assert res.class_colour_error.tolist() == [0.0]
        assert set(res.per_class[0]) == {ROAD, SKY, CAR}
        assert all(e == 0.0 for e, _ in res.per_class[0].values())


@pytest.mark.parametrize("form", ["uint8", "float"])
def test_constant_offset_gives_its_length(form: str) -> None:
    image, labels = _scene()
    shifted = image.copy()
    shifted[..., 0] += 10  # (10, 0, 0): image values <= 235, no overflow
    g, s = (shifted, image) if form == "uint8" else (_to_float(shifted), _to_float(image))
    res = colour_errors(g, s, labels)
    assert res.mean_colour_error[0] == pytest.approx(10.0, abs=1e-4)
    assert res.class_colour_error[0] == pytest.approx(10.0, abs=1e-4)
    assert all(e == pytest.approx(10.0, abs=1e-4) for e, _ in res.per_class[0].values())
    # (3, 4, 0) has length 5, whichever direction
    other = image.astype(np.int64) - np.array([3, 4, 0])
    res = colour_errors(other.astype(np.uint8), image, labels)
    assert res.mean_colour_error[0] == pytest.approx(5.0) and res.class_colour_error[0] == pytest.approx(5.0)


def test_colour_swap_in_one_class_changes_only_that_class() -> None:
    image, labels = _scene(1)
    generated = image.copy()
    car = labels == CAR
    generated[car] = generated[car][:, ::-1]  # R <-> B on the car only
    res = colour_errors(generated, image, labels)
    per = res.per_class[0]
    assert per[ROAD][0] == 0.0 and per[SKY][0] == 0.0
    d = image[car].astype(np.float64).mean(axis=0)
    expected = float(np.hypot(d[2] - d[0], d[0] - d[2]))  # mean colour difference (b - r, 0, r - b)
    assert expected > 1.0
    assert per[CAR] == (pytest.approx(expected), int(car.sum()))
    # the weighted mean over the scored classes; the whole-image mean sees the car's share of the pixels
    scored = sum(n for _, n in per.values())
    assert res.class_colour_error[0] == pytest.approx(expected * car.sum() / scored)
    assert res.mean_colour_error[0] == pytest.approx(expected * car.sum() / (H * W))


def test_tiny_classes_are_left_out() -> None:
    image, labels = _scene(2)
    generated = image.copy()
    pole = labels == POLE
    generated[pole] = 255 - generated[pole]  # a wrong colour on 3 pixels
    res = colour_errors(generated, image, labels)
    assert POLE not in res.per_class[0]
    assert res.class_colour_error[0] == 0.0  # only road, sky and car are scored
    assert res.mean_colour_error[0] > 0.0  # the whole-image mean still counts every pixel
    # the threshold is inclusive: a class with exactly k pixels is scored
    res = colour_errors(generated, image, labels, min_pixels=3)
    assert POLE in res.per_class[0] and res.class_colour_error[0] > 0.0
    assert MIN_CLASS_PIXELS == 16


def test_weighted_mean_over_classes_and_ignored_ids() -> None:
    image = np.full((4, 8, 3), 100, dtype=np.uint8)
    labels = np.zeros((4, 8), dtype=np.int64)
    labels[:, 6:] = 1  # class 0: 24 pixels, class 1: 8 pixels
    generated = image.copy()
    generated[:, :6, 1] += 4  # class 0: error 4
    generated[:, 6:, 2] += 12  # class 1: error 12
    res = colour_errors(generated, image, labels, min_pixels=8)
    assert res.per_class[0] == {0: (4.0, 24), 1: (12.0, 8)}
    assert res.class_colour_error[0] == pytest.approx((24 * 4 + 8 * 12) / 32)
    assert res.mean_colour_error[0] == pytest.approx(np.hypot(4 * 24 / 32, 12 * 8 / 32))
    res = colour_errors(generated, image, labels, min_pixels=8, ignore_ids={1})
    assert res.per_class[0] == {0: (4.0, 24)} and res.class_colour_error[0] == 4.0


def test_batches_records_and_no_scored_class() -> None:
    (a, la), (b, lb) = _scene(3), _scene(4)
    shifted = b.copy()
    shifted[..., 2] -= 6
    g = torch.cat([_to_float(a), _to_float(shifted)])
    s = torch.cat([_to_float(a), _to_float(b)])
    labels = torch.from_numpy(np.stack([la, lb]))
    res = colour_errors(g, s, labels)
    assert res.mean_colour_error == pytest.approx([0.0, 6.0], abs=1e-4)
    uint8 = colour_errors(np.stack([a, shifted]), np.stack([a, b]), labels.numpy())
    assert uint8.class_colour_error == pytest.approx(res.class_colour_error, abs=1e-4)
    records = res.records()
    assert json.loads(json.dumps(records)) == records
    assert records[1]["class_colour"][str(CAR)] == [pytest.approx(6.0, abs=1e-4), 32]
    # [0, 1] floats with value_range=(0, 1) give the same 0-255 numbers
    res01 = colour_errors((g + 1) / 2, (s + 1) / 2, labels, value_range=(0.0, 1.0))
    assert res01.mean_colour_error == pytest.approx(res.mean_colour_error, abs=1e-4)
    # every class below k pixels: no per-class figure (None in the stored record)
    none = colour_errors(a, a, la, min_pixels=H * W + 1)
    assert np.isnan(none.class_colour_error[0]) and none.records()[0]["class_colour_error"] is None
    assert none.records()[0]["class_colour"] == {}


def test_rejects_bad_input() -> None:
    image, labels = _scene()
    with pytest.raises(ShapeError):
        colour_errors(image, image[:-1], labels)
    with pytest.raises(ShapeError):
        colour_errors(image, image, labels[:-1])
    with pytest.raises(ShapeError):  # float images are channel-first
        colour_errors(image.astype(np.float32)[None], image.astype(np.float32)[None], labels)
    with pytest.raises(DTypeError):
        colour_errors(image.astype(np.int32), image.astype(np.int32), labels)
    with pytest.raises(DTypeError):
        colour_errors(image, image, labels.astype(np.float32))
    with pytest.raises(GescoInputError):  # outside [-1, 1]
        colour_errors(_to_float(image) * 3, _to_float(image), labels)
    with pytest.raises(GescoInputError):
        colour_errors(image, image, labels - 100)
    with pytest.raises(GescoInputError):
        colour_errors(image, image, labels, min_pixels=0)
