"""Closed forms of the Gaussian diffusion (gesco.diffusion.gaussian; paper Eq. 4-10).

Each formula is checked against an independent computation: the posterior by Bayes' rule on
scalar Gaussians (float64), the forward process by sampling (5 standard errors of the
estimators over 10^6 draws), the KL against torch.distributions, the decoder likelihood by
summing its 256 bin probabilities.
"""

from __future__ import annotations

import math

import pytest
import torch

from gesco.diffusion.gaussian import (
    DiffusionConfig,
    GaussianDiffusion,
    discretized_gaussian_log_likelihood,
    make_betas,
    normal_kl,
)
from gesco.errors import GescoInputError

FULL = GaussianDiffusion(DiffusionConfig())
CHAINS = {"full": FULL, "respaced50": FULL.respaced(50), "respaced7": FULL.respaced(7)}


def _t(i: int, batch: int = 1) -> torch.Tensor:
    return torch.full((batch,), i, dtype=torch.long)


# ---------------------------------------------------------------------------- schedule
def test_linear_schedule_endpoints_and_cosine_bound():
    b = make_betas("linear", 1000)
    assert b.dtype == torch.float64 and b.shape == (1000,)
    assert float(b[0]) == pytest.approx(1e-4) and float(b[-1]) == pytest.approx(0.02)
    assert float(make_betas("linear", 250)[-1]) == pytest.approx(0.08)  # scaled by 1000 / T
    c = make_betas("cosine", 1000)
    assert (c > 0).all() and (c <= 0.999).all()
    with pytest.raises(ValueError):
        make_betas("quadratic", 1000)


def test_config_round_trip():
    cfg = DiffusionConfig(num_timesteps=500, learn_sigma=False)
    assert DiffusionConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        DiffusionConfig.from_dict({"num_timesteps": 10, "typo": 1})


# ---------------------------------------------------------------------------- respacing
@pytest.mark.parametrize("steps", [1, 2, 10, 50, 999, 1000])
def test_respaced_chain_keeps_the_abar_of_the_kept_steps(steps):
    chain = FULL.respaced(steps)
    assert chain.num_steps == steps
    t = chain.timesteps
    assert t.tolist() == sorted(set(t.tolist()))
    # 1 - (1 - abar) loses about 1e-16 / abar of relative precision (abar_999 = 4e-5)
    torch.testing.assert_close(chain.alphas_cumprod, FULL.alphas_cumprod[t], rtol=1e-9, atol=0)
    assert t[-1] == 999  # every chain starts from the noisiest step
    if steps >= 2:
        assert t[0] == 0
    assert torch.isfinite(chain.posterior_log_variance_clipped).all()


def test_respacing_a_respaced_chain_keeps_original_indices():
    chain = FULL.respaced(100).respaced([0, 10, 50, 99])
    assert chain.timesteps.tolist() == FULL.respaced(100).timesteps[[0, 10, 50, 99]].tolist()
    torch.testing.assert_close(chain.alphas_cumprod, FULL.alphas_cumprod[chain.timesteps], rtol=1e-9, atol=0)
    full_again = FULL.respaced(1000)
    torch.testing.assert_close(full_again.betas, FULL.betas, rtol=1e-9, atol=0)


@pytest.mark.parametrize("steps", [0, 1001, [], [-1, 5], [3, 1000]])
def test_respaced_rejects_bad_steps(steps):
    with pytest.raises(GescoInputError):
        FULL.respaced(steps)


# ---------------------------------------------------------------------------- forward process
def test_q_sample_statistics_and_predict_x0_inverts_it():
    """For fixed x0, x_t = sqrt(abar) x0 + sqrt(1 - abar) eps has that mean and variance
    (10^6 draws; 5 SE: 0.005 * sd for the mean, 0.7 % for the variance)."""
    n = 1_000_000
    g = torch.Generator().manual_seed(0)
    for i in (0, 100, 500, 999):
        x0 = torch.full((n, 1, 1, 1), 0.6)
        eps = torch.randn(x0.shape, generator=g)
        xt = FULL.q_sample(x0, _t(i, n), eps)
        a = float(FULL.alphas_cumprod[i])
        assert abs(float(xt.double().mean()) - math.sqrt(a) * 0.6) < 5 * math.sqrt((1 - a) / n)
        assert float(xt.double().var()) / (1 - a) == pytest.approx(1.0, abs=5 * math.sqrt(2 / n))
        torch.testing.assert_close(FULL.predict_x0(xt, _t(i, n), eps), x0, atol=5e-4 if i == 999 else 1e-5, rtol=0)


# ---------------------------------------------------------------------------- posterior
def _bayes_posterior(chain: GaussianDiffusion, i: int, x0: float, xt: float) -> tuple[float, float]:
    """q(x_{i-1} | x_i, x_0) ∝ q(x_{i-1} | x_0) q(x_i | x_{i-1}), from the chain's betas only."""
    betas = chain.betas.tolist()
    abar_prev = math.prod(1 - b for b in betas[:i])
    alpha = 1 - betas[i]
    prec = 1 / (1 - abar_prev) + alpha / betas[i]
    var = 1 / prec
    mean = var * (math.sqrt(abar_prev) * x0 / (1 - abar_prev) + math.sqrt(alpha) * xt / betas[i])
    return mean, var


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_posterior_matches_bayes_rule(name):
    chain = CHAINS[name]
    x0 = torch.tensor([-0.9, 0.1, 0.7]).view(3, 1, 1, 1)
    xt = torch.tensor([0.4, -1.3, 2.0]).view(3, 1, 1, 1)
    for i in sorted({1, 2, chain.num_steps // 2, chain.num_steps - 1} - {0}):
        mean, var, logvar = chain.q_posterior(x0, xt, _t(i, 3))
        for k in range(3):
            m_ref, v_ref = _bayes_posterior(chain, i, float(x0[k]), float(xt[k]))
            assert float(mean[k]) == pytest.approx(m_ref, rel=1e-5, abs=1e-6)
            assert float(var[k]) == pytest.approx(v_ref, rel=1e-5)
            assert float(logvar[k]) == pytest.approx(math.log(v_ref), abs=1e-5)


def test_posterior_at_step_zero_is_the_clean_image():
    x0 = torch.tensor([0.3, -0.5]).view(2, 1, 1, 1)
    xt = torch.tensor([1.0, 1.0]).view(2, 1, 1, 1)
    mean, var, logvar = FULL.q_posterior(x0, xt, _t(0, 2))
    torch.testing.assert_close(mean, x0)
    assert (var == 0).all()
    assert torch.allclose(logvar, torch.log(FULL.posterior_variance[1]).float())  # clipped to beta_tilde_1


# ---------------------------------------------------------------------------- KL and likelihood
def test_normal_kl():
    m1, lv1 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([0.0, -1.0, 2.0])
    assert torch.allclose(normal_kl(m1, lv1, m1, lv1), torch.zeros(3), atol=1e-7)
    m2, lv2 = torch.tensor([0.5, 1.0, -1.0]), torch.tensor([0.3, -2.0, 2.0])
    kl = normal_kl(m1, lv1, m2, lv2)
    assert (kl > 0).all()
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(m1, torch.exp(0.5 * lv1)), torch.distributions.Normal(m2, torch.exp(0.5 * lv2))
    )
    torch.testing.assert_close(kl, ref)


@pytest.mark.parametrize("mean", [-1.2, -0.3, 0.02, 0.71, 1.1])
@pytest.mark.parametrize("log_scale", [-5.0, -2.0, 0.0, 1.0])
def test_discretized_likelihood_sums_to_one_over_the_256_bins(mean, log_scale):
    bins = torch.arange(256, dtype=torch.float32) / 127.5 - 1.0
    ll = discretized_gaussian_log_likelihood(bins, torch.full_like(bins, mean), torch.full_like(bins, log_scale))
    p = ll.double().exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-4)
    if -1 < mean < 1 and log_scale <= -2:  # a narrow Gaussian puts its mass at the nearest bin
        assert int(p.argmax()) == int(round((mean + 1) * 127.5))


# ---------------------------------------------------------------------------- model variance and mean
def test_model_log_variance_interpolates_between_beta_tilde_and_beta():
    t = _t(300, 4)
    v = torch.tensor([-1.0, 0.0, 1.0, 3.0]).view(4, 1, 1, 1)
    lv = FULL.model_log_variance(v, t).flatten()
    lo, hi = math.log(float(FULL.posterior_variance[300])), math.log(float(FULL.betas[300]))
    assert lv.tolist() == pytest.approx([lo, (lo + hi) / 2, hi, hi], abs=1e-5)  # v is clamped to [-1, 1]


def test_p_mean_variance_clips_x0_and_defaults_to_beta_tilde():
    xt = torch.full((1, 1, 2, 2), 3.0)
    eps = torch.zeros_like(xt)
    t = _t(10)
    mean, logvar, x0 = FULL.p_mean_variance(eps, None, xt, t, clip=True)
    assert x0.max() == 1.0
    torch.testing.assert_close(logvar.expand_as(xt), torch.full_like(xt, math.log(float(FULL.posterior_variance[10]))))
    ref_mean, _, _ = FULL.q_posterior(torch.ones_like(xt), xt, t)
    torch.testing.assert_close(mean, ref_mean)
    _, _, x0_free = FULL.p_mean_variance(eps, None, xt, t, clip=False)
    assert x0_free.min() > 1.0


# ---------------------------------------------------------------------------- losses
def _batch(b=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand((b, c, 4, 4), generator=g) * 2 - 1
    noise = torch.randn(x0.shape, generator=g)
    t = torch.tensor([0, 1, 10, 300, 700, 999][:b])
    return x0, noise, t, FULL.q_sample(x0, t, noise)


def test_vlb_is_zero_for_the_exact_model_and_positive_otherwise():
    """eps = the true noise and v = -1 (variance beta_tilde) make p(x_{t-1}|x_t) = q(x_{t-1}|x_t,x_0)."""
    x0, noise, t, xt = _batch()
    v = -torch.ones_like(x0)
    exact = FULL.vlb_terms(x0, xt, t, noise, v)
    assert exact.shape == (6,)
    assert exact[1:].abs().max() < 1e-4  # KL terms (bits per dimension)
    assert exact[0] > 0  # decoder NLL at t = 0
    wrong = FULL.vlb_terms(x0, xt, t, noise + 0.3, v)
    assert (wrong[1:] > exact[1:] + 1e-4).all()


def test_training_losses_shapes_and_stop_gradient():
    x0, noise, t, xt = _batch()
    out = torch.randn((6, 6, 4, 4), generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    losses = FULL.training_losses(out, x0, xt, t, noise)
    assert set(losses) == {"loss", "mse", "vb"}
    assert all(v.shape == (6,) for v in losses.values())
    torch.testing.assert_close(losses["loss"], losses["mse"] + 0.001 * losses["vb"])
    (g_vb,) = torch.autograd.grad(losses["vb"].sum(), out, retain_graph=True)
    assert (g_vb[:, :3] == 0).all()  # the VLB does not train the mean (eps)
    assert g_vb[:, 3:].abs().sum() > 0  # but does train the variance (v)
    (g_mse,) = torch.autograd.grad(losses["mse"].sum(), out)
    assert (g_mse[:, 3:] == 0).all() and g_mse[:, :3].abs().sum() > 0


def test_training_losses_weights_and_fixed_variance():
    x0, noise, t, xt = _batch()
    out = torch.randn((6, 6, 4, 4), generator=torch.Generator().manual_seed(1))
    w = torch.linspace(0.1, 1.0, 6)
    plain, weighted = FULL.training_losses(out, x0, xt, t, noise), FULL.training_losses(out, x0, xt, t, noise, mse_weight=w)
    torch.testing.assert_close(weighted["loss"], w * plain["mse"] + 0.001 * plain["vb"])
    fixed = GaussianDiffusion(DiffusionConfig(learn_sigma=False))
    losses = fixed.training_losses(out[:, :3], x0, xt, t, noise)
    assert "vb" not in losses
    torch.testing.assert_close(losses["loss"], ((out[:, :3] - noise) ** 2).mean(dim=(1, 2, 3)))


def test_min_snr_weight():
    t = torch.arange(1000)
    snr = FULL.snr(t).double()
    assert (snr[1:] < snr[:-1]).all()  # the SNR falls with t
    w = FULL.min_snr_weight(t, gamma=5.0).double()
    torch.testing.assert_close(w, torch.clamp(snr, max=5.0) / snr, rtol=1e-6, atol=0)
    assert (w[snr <= 5] == 1).all() and (w[snr > 5] < 1).all()
    assert float(w[0]) == pytest.approx(5.0 * (1 - float(FULL.alphas_cumprod[0])) / float(FULL.alphas_cumprod[0]), rel=1e-4)


def test_linear_schedule_refuses_degenerate_chains():
    import pytest as _pytest

    from gesco.diffusion.gaussian import make_betas

    assert float(make_betas("linear", 1000)[-1]) == _pytest.approx(0.02)
    with _pytest.raises(ValueError, match="num_timesteps > 20"):
        make_betas("linear", 20)


def test_multiscale_mse_weighs_every_scale_like_white_noise():
    from gesco.diffusion.gaussian import multiscale_mse

    # White unit-variance error: every scale's normalised MSE is ~1, so the mean is ~1.
    g = torch.Generator().manual_seed(0)
    err = torch.randn(256, 3, 32, 64, generator=g)
    assert float(multiscale_mse(err).mean()) == pytest.approx(1.0, abs=0.05)
    # A constant error c: the pooled MSE at factor d is c^2 d^2, the mean-colour term c^2 H W.
    c = 0.1
    flat = torch.full((2, 3, 32, 64), c)
    factors = (1, 2, 4, 8, 16)
    expected = (sum(c * c * d * d for d in factors) + c * c * 32 * 64) / (len(factors) + 1)
    torch.testing.assert_close(multiscale_mse(flat), torch.full((2,), expected), rtol=1e-5, atol=0)
    # Factors that do not divide the image are skipped (12 x 20: 1, 2, 4 and the mean).
    odd = torch.full((1, 3, 12, 20), c)
    expected = (c * c * (1 + 4 + 16) + c * c * 240) / 4
    torch.testing.assert_close(multiscale_mse(odd), torch.full((1,), expected), rtol=1e-5, atol=0)


def test_training_losses_multiscale_replaces_the_simple_term():
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    noise = torch.randn(x0.shape, generator=g)
    t = torch.tensor([10, 900])
    xt = FULL.q_sample(x0, t, noise)
    out = torch.randn(2, 6, 16, 16, generator=g)
    plain = FULL.training_losses(out, x0, xt, t, noise)
    ms = FULL.training_losses(out, x0, xt, t, noise, multiscale=True)
    torch.testing.assert_close(ms["mse"], plain["mse"])  # the logged MSE stays the plain one
    from gesco.diffusion.gaussian import multiscale_mse

    torch.testing.assert_close(ms["loss"] - plain["loss"], multiscale_mse(noise - out[:, :3]) - plain["mse"])


def test_predict_eps_inverts_eq4_and_predict_x0():
    """``predict_eps`` is Eq. (4) solved for the noise: it returns the noise that made ``x_t`` from
    ``x_0``, and undoes :meth:`predict_x0` (used by the appearance projection, gesco.appearance)."""
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 3, 4, 4, generator=g), torch.randn(3, 3, 4, 4, generator=g)
    t = torch.tensor([0, 500, 999])
    xt = FULL.q_sample(x0, t, eps)
    assert torch.allclose(FULL.predict_eps(xt, t, x0), eps, atol=1e-3)  # t = 999: 1 / sqrt(1 - abar) ~ 1
    assert torch.allclose(FULL.predict_eps(xt, t, FULL.predict_x0(xt, t, eps)), eps, atol=1e-3)
