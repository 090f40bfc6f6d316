"""Label-aware finishing (gesco.diffusion.finishing): smooths inside the chosen classes only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gesco.diffusion.finishing import Finishing, finish, gaussian_kernel, received_labels, sky_finishing
from gesco.errors import GescoInputError, ShapeError
from gesco.evaluate.metrics.grain import SKY, high_pass_rms

ROAD = 7


def _scene(noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A (1, 3, 32, 48) image: a noisy sky (top half, mean +0.6) over a noisy road (mean -0.4)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.full((1, 32, 48), ROAD, dtype=torch.int64)
    labels[:, :16] = SKY
    base = torch.where(labels == SKY, 0.6, -0.4).unsqueeze(1).expand(1, 3, 32, 48)
    return (base + noise * torch.randn(1, 3, 32, 48, generator=g)).clamp(-1, 1), labels


def test_kernel_is_normalised_and_symmetric():
    k = gaussian_kernel(2.0)
    assert k.numel() == 13 and torch.isclose(k.sum(), torch.tensor(1.0))
    assert torch.equal(k, k.flip(0))


def test_smooths_the_chosen_class_and_leaves_the_others_untouched():
    x, labels = _scene()
    y = finish(x, labels, Finishing(classes=(SKY,), sigma=2.0))
    road = (labels == ROAD).unsqueeze(1).expand_as(x)
    assert torch.equal(y[road], x[road])
    before, after = high_pass_rms(x, labels, SKY)[0], high_pass_rms(y, labels, SKY)[0]
    assert after < before / 3  # white noise of sd 0.1 (12.75 grey levels) mostly removed


def test_no_colour_crosses_a_class_boundary():
    # noise-free: each class a constant colour; smoothing inside classes must keep both exactly
    x, labels = _scene(noise=0.0)
    y = finish(x, labels, Finishing(classes=(SKY, ROAD), sigma=4.0))
    assert torch.allclose(y, x, atol=1e-6)


def test_alpha_blends_linearly_and_zero_is_the_identity():
    x, labels = _scene()
    full = finish(x, labels, Finishing(classes=(SKY,), sigma=2.0, alpha=1.0))
    half = finish(x, labels, Finishing(classes=(SKY,), sigma=2.0, alpha=0.5))
    assert torch.allclose(half, (x + full) / 2, atol=1e-6)
    assert torch.equal(finish(x, labels, Finishing(classes=(SKY,), alpha=0.0)), x)
    assert torch.equal(finish(x, labels, Finishing()), x)


def test_output_stays_in_the_input_range():
    x, labels = _scene(noise=1.0)
    x = x.clamp(-1, 1)
    y = finish(x, labels, Finishing(classes=(SKY, ROAD), sigma=1.5))
    assert float(y.min()) >= -1.0 - 1e-6 and float(y.max()) <= 1.0 + 1e-6


@pytest.mark.parametrize(("settings", "match"), [
    (Finishing(classes=(SKY,), sigma=0.0), "sigma"),
    (Finishing(classes=(SKY,), alpha=1.5), "alpha"),
    (Finishing(classes=(-1,)), "classes"),
])
def test_invalid_settings_are_named(settings, match):
    x, labels = _scene()
    with pytest.raises(GescoInputError, match=match):
        finish(x, labels, settings)


def test_labels_of_another_shape_are_refused():
    x, labels = _scene()
    with pytest.raises(ShapeError, match="labels"):
        finish(x, labels[:, :8], Finishing(classes=(SKY,)))
    with pytest.raises(ShapeError, match="labels"):
        finish(x[0], labels, Finishing(classes=(SKY,)))


def test_a_class_absent_from_the_label_map_changes_nothing():
    x, labels = _scene()
    assert np.array_equal(finish(x, labels, Finishing(classes=(26,))).numpy(), x.numpy())


def test_received_labels_is_the_argmax_of_the_class_maps_without_the_edge_map():
    cond = torch.zeros(1, 4, 2, 3)  # 3 class channels + the edge map
    cond[0, 1] = 1.0
    cond[0, 2, 0, 0] = 2.0
    cond[0, 3] = 5.0  # the edge map must not win
    got = received_labels(cond)
    assert got.tolist() == [[[2, 1, 1], [1, 1, 1]]]
    with pytest.raises(ShapeError, match="conditioning"):
        received_labels(cond[0])


def test_sky_finishing_settings():
    assert sky_finishing(0.0) == Finishing()
    assert sky_finishing(1.0) == Finishing(classes=(SKY,), sigma=1.0, alpha=1.0)
