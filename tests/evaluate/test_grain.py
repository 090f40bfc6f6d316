"""Tests of gesco.evaluate.metrics.grain: high-pass RMS inside a class."""

import numpy as np
import pytest

from gesco.errors import ShapeError
from gesco.evaluate.metrics.grain import SKY, high_pass_rms, interior_mask


def _scene(h=32, w=64):
    label = np.full((h, w), 7, np.int64)  # road
    label[: h // 2] = SKY
    return label


def test_smooth_sky_has_no_grain_and_noise_has_its_expected_rms():
    label = _scene()
    ramp = np.broadcast_to(np.linspace(60, 200, 64)[None, :, None], (32, 64, 3))
    img = np.array(ramp)
    img[16:] = 0  # a hard edge at the sky's border does not count: only interior pixels
    assert high_pass_rms(np.rint(img).astype(np.uint8), label)[0] < 0.6  # rounding only
    rng = np.random.default_rng(0)
    noisy = np.clip(np.rint(128 + rng.normal(0, 10, img.shape)), 0, 255).astype(np.uint8)
    assert high_pass_rms(noisy, label)[0] == pytest.approx(10 * np.sqrt(8 / 9), rel=0.06)


def test_float_images_interior_and_missing_class():
    label = np.stack([_scene(), np.full((32, 64), 7)])
    x = np.zeros((2, 3, 32, 64), np.float32)  # [-1, 1] range, flat: no grain
    out = high_pass_rms(x, label)
    assert out[0] == 0.0 and np.isnan(out[1])  # the second image has no sky
    m = interior_mask(_scene(), SKY)[0]
    assert m[:15].all() and not m[15:].any()  # the last sky row touches the road
    with pytest.raises(ShapeError):
        high_pass_rms(x, label[:, :16])
