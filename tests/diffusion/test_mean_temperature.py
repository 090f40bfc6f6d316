"""The mean temperature ``tau`` (gesco.diffusion.samplers.scale_start_mean): the starting noise keeps
its zero-mean part and its per-channel spatial mean is multiplied by ``tau``; every entry point
(``sample``, ``SamplingSettings``, ``SemanticGenerator`` and its card's recommendation) applies the one
function and refuses a value outside [0, 1] with a named error."""

import math

import pytest
import torch

from gesco.diffusion.checkpoint import ModelCard
from gesco.diffusion.gaussian import DiffusionConfig, GaussianDiffusion
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator, recommended_mean_temperature
from gesco.diffusion.samplers import _noise, sample, scale_start_mean
from gesco.diffusion.unet import SpadeUNet
from gesco.errors import GescoInputError

BAD = [-0.1, 1.5, float("nan"), float("inf"), "warm"]


def test_the_mean_is_scaled_and_the_rest_untouched():
    x = torch.randn(4, 3, 16, 32, generator=torch.Generator().manual_seed(0))
    m = x.mean((2, 3), keepdim=True)
    for tau in (0.0, 0.25, 0.5, 0.9):
        y = scale_start_mean(x, tau)
        torch.testing.assert_close(y.mean((2, 3), keepdim=True), tau * m, atol=1e-7, rtol=1e-5)
        torch.testing.assert_close(y - y.mean((2, 3), keepdim=True), x - m, atol=1e-6, rtol=0)
    assert scale_start_mean(x, 1.0) is x  # the paper's sampling: x_T itself
    assert scale_start_mean(x, 0.0).mean((2, 3)).abs().max() < 1e-7


def test_the_mean_of_the_scaled_noise_has_variance_tau_squared_over_n():
    """Seeded: 2,400 channel means of N(0, I) noise over N = 512 pixels: Var(mean) = 1/N, and tau^2/N after scaling
    (relative standard error of a variance from 2,400 draws: sqrt(2/2400) = 2.9%; 15% is over 5 of them)."""
    x = torch.randn(800, 3, 16, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    n = 16 * 32
    assert x.mean((2, 3)).var().item() == pytest.approx(1.0 / n, rel=0.15)
    for tau in (0.5, 0.25):
        y = scale_start_mean(x, tau)
        assert y.mean((2, 3)).var().item() == pytest.approx(tau**2 / n, rel=0.15)
        # every pixel keeps (almost) unit variance: 1 - (1 - tau^2) / N
        assert y.var().item() == pytest.approx(1.0 - (1.0 - tau**2) / n, rel=0.01)


@pytest.mark.parametrize("tau", BAD)
def test_bad_values_are_refused_with_a_named_error(tau):
    x = torch.zeros(1, 3, 4, 4)
    with pytest.raises(GescoInputError, match=r"mean temperature must be (a number )?in \[0, 1\]"):
        scale_start_mean(x, tau)
    with pytest.raises(GescoInputError, match="mean temperature"):
        SamplingSettings(mean_temperature=tau).validate()


def test_sample_scales_the_start_it_draws_or_is_given():
    """``sample(mean_temperature=tau)`` is ``sample(x_T=scale_start_mean(x_T, tau))`` with x_T drawn from the
    same generators; a deterministic sampler makes the images comparable."""
    diffusion = GaussianDiffusion(DiffusionConfig(num_timesteps=100))

    def denoiser(x, t):
        return 0.3 * x, None

    shape = (2, 3, 8, 16)

    def gens():
        return [torch.Generator().manual_seed(s) for s in (3, 4)]

    x_T = _noise(shape, gens(), "cpu")
    drawn = sample(denoiser, diffusion, shape, sampler="ddim", steps=4, generator=gens(), mean_temperature=0.5)
    given = sample(denoiser, diffusion, shape, sampler="ddim", steps=4, x_T=scale_start_mean(x_T, 0.5))
    plain = sample(denoiser, diffusion, shape, sampler="ddim", steps=4, generator=gens())
    torch.testing.assert_close(drawn, given)
    assert not torch.allclose(drawn, plain)
    with pytest.raises(GescoInputError, match="mean temperature"):
        sample(denoiser, diffusion, shape, sampler="ddim", steps=4, generator=gens(), mean_temperature=2.0)


def _generator(tiny_unet_config, recommended: dict | None = None, **kwargs) -> SemanticGenerator:
    torch.manual_seed(0)
    model = SpadeUNet(tiny_unet_config)
    conditioning = {"recommended_sampling": recommended} if recommended is not None else {}
    card = ModelCard(unet=tiny_unet_config, diffusion=DiffusionConfig(), resolution=(16, 32), conditioning=conditioning)
    return SemanticGenerator(model, card, "cpu", **kwargs)


def test_the_generator_takes_the_cards_recommendation_unless_told(tiny_unet_config):
    assert _generator(tiny_unet_config).mean_temperature == 1.0  # no recommendation: the paper's sampling
    assert _generator(tiny_unet_config, {"sampler": "ddim"}).mean_temperature == 1.0
    recommending = _generator(tiny_unet_config, {"mean_temperature": 0.5})
    assert recommending.mean_temperature == 0.5
    assert recommending.describe()["mean_temperature"] == 0.5
    assert _generator(tiny_unet_config, {"mean_temperature": 0.5}, mean_temperature=1.0).mean_temperature == 1.0
    with pytest.raises(GescoInputError, match="mean temperature"):
        _generator(tiny_unet_config, {"mean_temperature": 3})
    with pytest.raises(GescoInputError, match="mean temperature"):
        _generator(tiny_unet_config, mean_temperature=-1)
    assert recommended_mean_temperature(None) == 1.0


@pytest.fixture
def one_thread():
    """Batch-size-independent float rounding (as in test_pipeline.py)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_generate_applies_the_generators_tau_unless_the_settings_name_one(tiny_unet_config, one_thread):
    cond = torch.zeros(2, 36, 16, 32)
    cond[:, 7] = 1.0
    paper = _generator(tiny_unet_config)
    half = _generator(tiny_unet_config, {"mean_temperature": 0.5})

    def settings(tau=None):
        return [SamplingSettings(sampler="dpmpp-2m-sde-ode-mean", steps=3, seed=s, mean_temperature=tau) for s in (1, 2)]

    a = paper.generate(cond, settings())
    torch.testing.assert_close(a, paper.generate(cond, settings(1.0)))
    b = half.generate(cond, settings())
    torch.testing.assert_close(b, paper.generate(cond, settings(0.5)))
    torch.testing.assert_close(a, half.generate(cond, settings(1.0)))  # an explicit tau wins over the card's
    assert not torch.allclose(a, b)
    # images with different tau in one call are sampled apart (group key), each as if alone
    mixed = paper.generate(cond, [settings(1.0)[0], settings(0.5)[1]])
    torch.testing.assert_close(mixed[0], a[0], atol=2e-4, rtol=0)
    torch.testing.assert_close(mixed[1], b[1], atol=2e-4, rtol=0)
    assert math.isclose(paper.mean_temperature, 1.0)


def test_the_receivers_default_checkpoint_recommends_tau_one_half():
    """The receiver's default (the guidance-distilled student with its mean path fitted on received maps) and the
    student itself sample at tau 0.5, chosen on the validation split (docs/colour/README.md sections 6.3-6.4);
    the guided model keeps the paper's 1."""
    from gesco.diffusion.checkpoint import read_card
    from gesco.paths import DEFAULT_DIFFUSION, DEFAULT_RECEIVER, DEFAULT_STUDENT, shipped_checkpoint

    receiver = read_card(shipped_checkpoint(DEFAULT_RECEIVER))
    assert recommended_mean_temperature(receiver) == 0.5
    assert receiver.training["mean_path_fit"]["maps"] == "received"
    assert recommended_mean_temperature(read_card(shipped_checkpoint(DEFAULT_STUDENT))) == 0.5
    assert recommended_mean_temperature(read_card(shipped_checkpoint(DEFAULT_DIFFUSION))) == 1.0
