"""The Bayes-optimal mean path (gesco.diffusion.mean_path) and its least-squares fit into the U-Net."""

from dataclasses import replace

import pytest
import torch

from gesco.diffusion.gaussian import DiffusionConfig, GaussianDiffusion
from gesco.diffusion.mean_path import ColourPrior, bayes_mean_path, fit_colour_prior, fit_mean_path, with_mean_path
from gesco.diffusion.unet import MEAN_PATH_PREFIXES, SpadeUNet


def test_fit_colour_prior_recovers_the_linear_map_and_the_residual_covariance():
    g = torch.Generator().manual_seed(0)
    n, c, lab = 4000, 3, 5
    frac = torch.rand(n, lab, generator=g)
    frac = frac / frac.sum(1, keepdim=True)  # class fractions sum to 1, as one-hot maps do
    M = torch.randn(c, lab, generator=g, dtype=torch.float64) * 0.3
    L = torch.tensor([[0.1, 0.0, 0.0], [0.05, 0.08, 0.0], [0.02, 0.03, 0.06]], dtype=torch.float64)
    m = frac.double() @ M.T + torch.randn(n, c, generator=g, dtype=torch.float64) @ L.T
    # images / conditioning whose spatial means are m / frac
    prior = fit_colour_prior(m[:, :, None, None].expand(n, c, 2, 2), frac[:, :, None, None].expand(n, lab, 2, 2))
    torch.testing.assert_close(prior.M, M, atol=0.03, rtol=0)
    torch.testing.assert_close(prior.V, L @ L.T, atol=1.5e-3, rtol=0)
    assert torch.all(prior.V_uncond.diagonal() > prior.V.diagonal())


def test_isotropic_prior_gives_colour_studys_scalar_gain_and_the_prior_cancels_the_label_mean():
    diffusion = GaussianDiffusion(DiffusionConfig())
    v0, n_pix = 0.02, 8192
    M = torch.randn(3, 4, dtype=torch.float64)
    prior = ColourPrior(M=M, V=v0 * torch.eye(3, dtype=torch.float64), V_uncond=torch.eye(3), scenes=1)
    G, Q = bayes_mean_path(diffusion.alphas_cumprod, prior, n_pix)
    for t in (999, 900, 700, 500, 300, 10):
        a2 = float(diffusion.alphas_cumprod[t])
        s2 = 1 - a2
        k_star = (s2 / n_pix) / (a2 * v0 + s2 / n_pix)  # scripts/colour_study.py's ideal
        torch.testing.assert_close(s2**0.5 * G[t], k_star * torch.eye(3, dtype=torch.float64))
        # a noiseless x_t at the prior's mean colour: the predicted mean noise is zero
        ybar = torch.rand(4, dtype=torch.float64)
        torch.testing.assert_close(G[t] @ (a2**0.5 * M @ ybar) + Q[t] @ ybar, torch.zeros(3, dtype=torch.float64))


def test_fit_mean_path_makes_the_networks_mean_response_the_target(tiny_unet_config):
    torch.manual_seed(0)
    # base 32: the shipped model's 128-dim time embedding (the tiny default's 32 dims fit the curves badly)
    model = SpadeUNet(replace(tiny_unet_config, base_channels=32, mean_skip=True)).eval()
    diffusion = GaussianDiffusion(DiffusionConfig())
    lab = tiny_unet_config.label_channels
    prior = ColourPrior(M=torch.randn(3, lab, dtype=torch.float64) * 0.2,
                        V=torch.tensor([[0.02, 0.015, 0.01], [0.015, 0.02, 0.012], [0.01, 0.012, 0.02]],
                                       dtype=torch.float64),
                        V_uncond=torch.eye(3), scenes=1)
    G, Q = bayes_mean_path(diffusion.alphas_cumprod, prior, 16 * 32)
    errs = fit_mean_path(model, G, Q)
    # an untrained net's embedding: within 10 % (the shipped student's: 1.7 % for G, 2.4 % for Q)
    assert errs["max_abs_err_G"] < 0.1 * errs["max_abs_G"] and errs["max_abs_err_Q"] < 0.1 * errs["max_abs_Q"]
    x = torch.randn(1, 3, 16, 32)
    y = torch.zeros(1, lab, 16, 32)
    y[:, 1, :8] = 1.0
    shift = torch.tensor([0.02, -0.01, 0.03])[None, :, None, None]
    for t in (999, 700, 300):
        tt = torch.tensor([t])
        with torch.no_grad():
            d = (model(x + shift, tt, y)[:, :3] - model(x, tt, y)[:, :3]).mean((2, 3))[0].double()
        # the response of the whole network: the target G(t) up to the fit's reported error and
        # the tiny net's own (border) leak
        tol = 2e-3 + errs["max_abs_err_G"] * float(shift.abs().sum())
        torch.testing.assert_close(d, G[t] @ shift.flatten().double(), atol=tol, rtol=0)


def test_fit_mean_path_refuses_a_model_without_the_path(tiny_unet_config):
    model = SpadeUNet(replace(tiny_unet_config, mean_skip=False))
    with pytest.raises(ValueError, match="no mean path"):
        fit_mean_path(model, torch.zeros(1000, 3, 3), torch.zeros(1000, 3, tiny_unet_config.label_channels))


def test_with_mean_path_adds_a_zero_path_that_changes_nothing_until_fitted(tiny_unet_config):
    torch.manual_seed(0)
    old = SpadeUNet(replace(tiny_unet_config, mean_skip=False)).eval()
    for p in old.out.parameters():  # the zero-initialised head would make every output 0
        torch.nn.init.normal_(p, std=0.1)
    new = with_mean_path(old)
    assert new is not old and new.config == replace(old.config, mean_skip=True) and not new.training
    state = new.state_dict()
    added = [k for k in state if k not in old.state_dict()]
    assert added and all(k.startswith(MEAN_PATH_PREFIXES) for k in added)
    assert all(not state[k].any() for k in added)  # zero-initialised
    for k, v in old.state_dict().items():
        assert torch.equal(state[k], v), k
    x, y = torch.randn(2, 3, 16, 32), torch.rand(2, tiny_unet_config.label_channels, 16, 32)
    t = torch.tensor([999, 300])
    with torch.no_grad():
        torch.testing.assert_close(new(x, t, y), old(x, t, y), atol=0, rtol=0)
    assert with_mean_path(new) is new  # a model with the path is returned as it is
