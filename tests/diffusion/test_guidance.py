"""Classifier-free guidance as a denoiser (gesco.diffusion.guidance; paper Eq. 13).

A fake model whose outputs depend on ``x``, ``t`` and the conditioning ``y`` (so the
conditional and unconditional passes differ) counts its calls and their batch sizes.
"""

from __future__ import annotations

import pytest
import torch

from gesco.diffusion.guidance import guided_denoiser, split_output

B, C, L, H, W = 3, 3, 5, 4, 6


class FakeModel:
    """``(x, t, y) -> (B, 2C or C, H, W)``: eps = 0.5 x + sum_l y_l + t/1000, v = tanh(y_0) - 0.2."""

    def __init__(self, learn_sigma: bool = True):
        self.learn_sigma = learn_sigma
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def __call__(self, x, t, y):
        self.calls.append((x.clone(), t.clone(), y.clone()))
        eps = 0.5 * x + y.sum(1, keepdim=True) + t.view(-1, 1, 1, 1) / 1000.0
        if not self.learn_sigma:
            return eps
        v = (torch.tanh(y[:, :1]) - 0.2).expand_as(x)
        return torch.cat([eps, v], dim=1)


@pytest.fixture()
def inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn((B, C, H, W), generator=g)
    t = torch.tensor([999, 500, 3])
    y = (torch.rand((B, L, H, W), generator=g) > 0.5).float()
    return x, t, y


def _direct(x, t, y, learn_sigma=True):
    return split_output(FakeModel(learn_sigma)(x, t, y), C)


def test_scale_one_is_the_conditional_pass_in_one_call(inputs):
    x, t, y = inputs
    model = FakeModel()
    eps, v = guided_denoiser(model, y, 1.0, image_channels=C)(x, t)
    eps_y, v_y = _direct(x, t, y)
    torch.testing.assert_close(eps, eps_y)
    torch.testing.assert_close(v, v_y)
    assert len(model.calls) == 1 and model.calls[0][0].shape[0] == B
    assert torch.equal(model.calls[0][2], y)


def test_scale_zero_is_the_unconditional_pass_with_the_zero_map(inputs):
    x, t, y = inputs
    model = FakeModel()
    eps, v = guided_denoiser(model, y, 0.0, image_channels=C)(x, t)
    eps_0, v_0 = _direct(x, t, torch.zeros_like(y))
    torch.testing.assert_close(eps, eps_0)
    torch.testing.assert_close(v, v_0)
    assert len(model.calls) == 1 and model.calls[0][0].shape[0] == B
    assert (model.calls[0][2] == 0).all()
    assert not torch.allclose(eps, _direct(x, t, y)[0])  # the zero map really is a different input


@pytest.mark.parametrize("scale", [2.0, 2.5, -0.5])
def test_guided_scale_combines_both_passes_in_one_batched_forward(inputs, scale):
    x, t, y = inputs
    model = FakeModel()
    eps, v = guided_denoiser(model, y, scale, image_channels=C)(x, t)
    assert len(model.calls) == 1
    cx, ct, cy = model.calls[0]
    assert cx.shape[0] == 2 * B
    assert torch.equal(cx[:B], x) and torch.equal(cx[B:], x)
    assert torch.equal(ct[:B], t) and torch.equal(ct[B:], t)
    assert torch.equal(cy[:B], y) and (cy[B:] == 0).all()
    eps_y, v_y = _direct(x, t, y)
    eps_0, _ = _direct(x, t, torch.zeros_like(y))
    torch.testing.assert_close(eps, eps_0 + scale * (eps_y - eps_0))
    torch.testing.assert_close(v, v_y)  # the variance comes from the conditional half
    assert eps.shape == x.shape and v.shape == x.shape


def test_without_learned_variance_v_is_none(inputs):
    x, t, y = inputs
    for scale in (0.0, 1.0, 2.0):
        eps, v = guided_denoiser(FakeModel(learn_sigma=False), y, scale, image_channels=C)(x, t)
        assert v is None and eps.shape == x.shape
