"""Every sampler's output is frozen: a refactor of :mod:`gesco.diffusion.samplers` must not
change a single image.

A tiny random-weight :class:`~gesco.diffusion.unet.SpadeUNet` (seeded) on a 40-step linear
chain (so the paper's full ancestral sampler runs in a fraction of a second) draws a batch of
two ``3 x 8 x 16`` images with one generator per image, as the receiver does, through
:func:`~gesco.diffusion.samplers.sample` by name: every sampler, guided (scale 2, one batched
forward of ``2B``) and unguided (scale 1), plus the options a name does not reach (DDIM's
``eta``, the spacings, the distilled parametrisations, the SDE solver's ``ode_tail``).

The reference file ``tests/fixtures/frozen/samplers.safetensors`` was written from the samplers
as they stood before issue 27's sampler registry. A deliberate change of a sampler rewrites it
with ``GESCO_UPDATE_FROZEN=1 python -m pytest tests/diffusion/test_samplers_frozen.py``; the
commit must say why the images changed.

Tolerance: the test runs on one torch thread (restored afterwards), so on one machine the
outputs are bitwise reproducible, and the refactor of issue 27 was checked to give exactly the
stored tensors (max |diff| 0). Another CPU may pick other convolution kernels (oneDNN), which
round the network's outputs differently; the few steps of a sampler compound that (the same
images drawn on two threads instead of one differ by up to 1.6e-5 here). :data:`ATOL` = 1e-4
on images in ``[-1, 1]`` allows for that, 100x below the smallest difference between any two
cases (0.012, the progressive student guided or not): a changed formula fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from gesco.diffusion.gaussian import DiffusionConfig, GaussianDiffusion
from gesco.diffusion.guidance import guided_denoiser
from gesco.diffusion.samplers import sample
from gesco.diffusion.unet import SpadeUNet, UNetConfig

FROZEN = Path(__file__).resolve().parents[1] / "fixtures" / "frozen" / "samplers.safetensors"
ATOL = 1e-4
SHAPE = (2, 3, 8, 16)
CHAIN = GaussianDiffusion(DiffusionConfig(num_timesteps=40))

#: case name -> keyword arguments of :func:`sample` (besides the denoiser, chain and shape)
CASES: dict[str, dict] = {
    "ancestral": dict(sampler="ancestral", steps=None),
    "respaced": dict(sampler="respaced", steps=5),
    "respaced-logsnr": dict(sampler="respaced", steps=5, spacing="logsnr"),
    "ddim": dict(sampler="ddim", steps=4),
    "ddim-eta1": dict(sampler="ddim", steps=4, eta=1.0),
    "ddim-uniform": dict(sampler="ddim", steps=4, spacing="uniform"),
    "dpmpp-2m": dict(sampler="dpmpp-2m", steps=4),
    "dpmpp-2m-uniform": dict(sampler="dpmpp-2m", steps=4, spacing="uniform"),
    "dpmpp-2m-sde": dict(sampler="dpmpp-2m-sde", steps=4),
    "dpmpp-2m-sde-ode-mean": dict(sampler="dpmpp-2m-sde-ode-mean", steps=8),
    "distilled": dict(sampler="distilled", steps=4),
    "distilled-x0": dict(sampler="distilled", steps=4, parametrisation="x0"),
    "distilled-eps": dict(sampler="distilled", steps=4, parametrisation="eps"),
}
#: guidance scales: 2 (guided, the receiver's) and 1 (one plain conditional pass)
SCALES = {"guided": 2.0, "unguided": 1.0}


class _NearOptimal(torch.nn.Module):
    """``net(x, t, y)`` plus the optimal denoiser of unit-variance data: the epsilon channels are
    ``sqrt(1 - abar_t) x + 0.1 eps_net`` and the variance channels ``v_net``.

    A random U-Net alone predicts an epsilon far from any data's, so ``x0_hat`` lands far outside
    ``[-1, 1]`` and the clamp saturates nearly every pixel of the deterministic samplers (the test
    would then not see a changed formula); this keeps the images inside the range and every path
    of the U-Net (guided batch of ``2B``, SPADE, learned variance) in the output."""

    def __init__(self, net: SpadeUNet) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("sqrt_one_minus_abar", (1.0 - CHAIN.alphas_cumprod).sqrt().float())

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.net(x, t, y)
        eps = self.sqrt_one_minus_abar[t].view(-1, 1, 1, 1) * x + 0.1 * out[:, :3]
        return torch.cat([eps, out[:, 3:]], dim=1)


def _model() -> _NearOptimal:
    """A seeded tiny SPADE U-Net with learned variance, its weights perturbed off the zero init."""
    torch.manual_seed(0)
    net = SpadeUNet(UNetConfig(label_channels=36, base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                               attention_ds=(2,), head_channels=8, spade_hidden=8, num_groups=4))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return _NearOptimal(net).eval()


def _conditioning() -> torch.Tensor:
    """``(2, 36, 8, 16)``: two layouts of two classes each, as one-hot maps."""
    y = torch.zeros(2, 36, 8, 16)
    y[0, 7, :, :9] = 1
    y[0, 11, :, 9:] = 1
    y[1, 21, :5] = 1
    y[1, 26, 5:] = 1
    return y


def _generators() -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed) for seed in (5, 6)]


def compute_all() -> dict[str, torch.Tensor]:
    """Every case's images, keyed ``"<case>/<guided|unguided>"`` (plus the ``ode_tail`` cases)."""
    model, y = _model(), _conditioning()
    out: dict[str, torch.Tensor] = {}
    for scale_name, scale in SCALES.items():
        denoiser = guided_denoiser(model, y, scale, 3)
        for name, kwargs in CASES.items():
            out[f"{name}/{scale_name}"] = sample(denoiser, CHAIN, SHAPE, generator=_generators(), **kwargs)
        for tail in (1, 2):  # not reachable by a sampler name: the SDE solver's deterministic ending
            out[f"dpmpp-2m-sde-ode-tail{tail}/{scale_name}"] = sample(
                denoiser, CHAIN, SHAPE, sampler="dpmpp-2m-sde", steps=4, ode_tail=tail, generator=_generators())
    return out


@pytest.fixture(scope="module")
def computed() -> dict[str, torch.Tensor]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            return compute_all()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def frozen(computed) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file, save_file

    if os.environ.get("GESCO_UPDATE_FROZEN") == "1":
        FROZEN.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in computed.items()}, str(FROZEN))
    return load_file(str(FROZEN))


def test_the_frozen_file_covers_every_case(computed, frozen):
    assert sorted(frozen) == sorted(computed)
    # each case is its own image: a sampler that ignored its options would repeat another case
    keys = sorted(computed)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert (computed[a] - computed[b]).abs().max() > 1e-3, (a, b)


@pytest.mark.parametrize("scale", list(SCALES))
@pytest.mark.parametrize("case", [*CASES, "dpmpp-2m-sde-ode-tail1", "dpmpp-2m-sde-ode-tail2"])
def test_sampler_output_is_unchanged(computed, frozen, case, scale):
    key = f"{case}/{scale}"
    got, want = computed[key], frozen[key]
    assert got.shape == want.shape == SHAPE and got.dtype == want.dtype == torch.float32
    assert (got - want).abs().max().item() <= ATOL, f"{key}: max |diff| {(got - want).abs().max().item():.3g}"
