"""The paper's "Full image" baseline (gesco.channel.transmit_image): the RGB pixels as
channel symbols, power-normalised like the maps, clipped back to [0, 1]."""

from __future__ import annotations

import pytest
import torch

from gesco.channel import get_channel, transmit_image
from gesco.errors import ShapeError


def _images(b: int = 2, h: int = 16, w: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["awgn", "authors-code"])
def test_shape_range_and_channel_uses(name):
    img = _images()
    out, res = transmit_image(img, get_channel(name), 1.0, generator=torch.Generator().manual_seed(1))
    assert out.shape == img.shape and out.dtype == torch.float32
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0
    # at 1 dB the noise pushes many pixels past both ends: clipping really happened
    assert (out == 0).any() and (out == 1).any()
    assert not torch.equal(out, img)
    assert res.channel_uses.tolist() == [3 * 16 * 24] * 2


def test_unclipped_symbols_are_reported():
    img = _images(1, 8, 8)
    out, res = transmit_image(img, get_channel("awgn"), 1.0, generator=torch.Generator().manual_seed(2))
    assert res.received.min().item() < 0.0 or res.received.max().item() > 1.0
    torch.testing.assert_close(out, res.received.clamp(0, 1), rtol=0, atol=0)


def test_clean_channel_returns_the_image():
    img = _images(seed=3)
    out, res = transmit_image(img, get_channel("awgn"), 100.0, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, img, rtol=0, atol=1e-4)
    # the pixels are power-normalised like any other symbols
    torch.testing.assert_close(res.scale, torch.sqrt((img.double() ** 2).mean((1, 2, 3))).float(), rtol=1e-6, atol=0)


def test_per_image_psnr_and_reproducibility():
    img = _images(2, 64, 64, seed=4)
    ch = get_channel("awgn")
    out1, res = transmit_image(img, ch, torch.tensor([5.0, 30.0]), generator=torch.Generator().manual_seed(5))
    out2, _ = transmit_image(img, ch, torch.tensor([5.0, 30.0]), generator=torch.Generator().manual_seed(5))
    assert torch.equal(out1, out2)
    err = (out1 - img).pow(2).mean((1, 2, 3))
    assert err[0] > 10 * err[1]  # 25 dB apart


def test_float64_input_is_sent_as_float32():
    img = _images(1, 4, 4).double()
    out, _ = transmit_image(img, get_channel("awgn"), 100.0)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 1, 8, 8), (2, 4, 8, 8), (1, 8, 8, 3)])
def test_non_rgb_batches_raise_shape_error(shape):
    with pytest.raises(ShapeError, match=r"\(B, 3, H, W\)"):
        transmit_image(torch.rand(shape), get_channel("awgn"), 10.0)
