"""Gaussian diffusion: forward process, posterior, learned-range variance, hybrid loss.

Notation of the paper (section 3.3) and of Ho et al. / Nichol & Dhariwal:

* linear schedule ``beta_t`` from ``1e-4 * 1000 / T`` to ``0.02 * 1000 / T``, ``T = 1000``;
  ``alpha_t = 1 - beta_t``, ``abar_t = prod_{s<=t} alpha_s``.
* forward process (Eq. 4): ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)``, so
  ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``.
* posterior (Eq. 5-6): ``q(x_{t-1} | x_t, x_0) = N(mu_tilde, beta_tilde_t I)`` with
  ``mu_tilde = c0_t x_0 + ct_t x_t``, ``c0_t = beta_t sqrt(abar_{t-1}) / (1 - abar_t)``,
  ``ct_t = (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t)``,
  ``beta_tilde_t = (1 - abar_{t-1}) beta_t / (1 - abar_t)``.
* the network predicts ``eps`` (Eq. 8) and ``v in [-1, 1]``; the learned-range variance
  (Eq. 7) is ``Sigma = exp(f log beta_t + (1 - f) log beta_tilde_t)``, ``f = (v + 1) / 2``.
* hybrid loss (Eq. 10): ``L = L_simple + lambda L_vlb``, ``lambda = 0.001``. ``L_vlb`` is the
  sum over ``t`` of the per-step terms (Eq. 9: ``KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))`` for
  ``t > 0``, the discretised Gaussian decoder NLL at ``t = 0``); with ``t`` drawn uniformly,
  ``T * L_t`` is its unbiased estimate, so the sample's loss is ``mse + lambda * T * L_t``
  (in bits per dimension). As in improved DDPM, ``L_vlb`` sees the mean through a
  stopped gradient, so it trains only the variance.

A :class:`GaussianDiffusion` can be *respaced* to a subsequence of time steps
(:meth:`GaussianDiffusion.respaced`): the betas are recomputed from the kept ``abar``
values, and the model is still called with the original time indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gesco.config_base import ConfigBase
from gesco.errors import GescoInputError


@dataclass
class DiffusionConfig(ConfigBase):
    """Settings of the Gaussian diffusion.

    Attributes:
        num_timesteps: ``T`` (1000 in the paper).
        beta_schedule: ``"linear"`` (the paper's) or ``"cosine"``.
        learn_sigma: the model predicts the variance interpolation ``v`` (Eq. 7).
        vlb_weight: ``lambda`` of Eq. (10) (0.001).
    """

    num_timesteps: int = 1000
    beta_schedule: str = "linear"
    learn_sigma: bool = True
    vlb_weight: float = 0.001


def make_betas(schedule: str, num_timesteps: int) -> torch.Tensor:
    """``beta_t`` for ``t = 0..T-1`` (float64)."""
    if schedule == "linear":
        if num_timesteps <= 20:
            # beta_T = 0.02 * 1000 / T reaches 1 (alpha_T = 0) at T = 20: a degenerate chain
            raise ValueError(f"the linear schedule needs num_timesteps > 20, got {num_timesteps}")
        scale = 1000.0 / num_timesteps
        return torch.linspace(scale * 1e-4, scale * 0.02, num_timesteps, dtype=torch.float64)
    if schedule == "cosine":
        s = 0.008
        steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown beta schedule {schedule!r}; known: linear, cosine")


def _gather(a: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """``a[t]`` as float32, shaped ``(B, 1, ..., 1)`` to broadcast over ``ndim`` dims."""
    out = a.to(t.device)[t].float()
    return out.view(-1, *([1] * (ndim - 1)))


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """``KL(N(mean1, e^logvar1) || N(mean2, e^logvar2))`` elementwise (nats)."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Log-likelihood of images in [-1, 1] quantised to 256 bins under ``N(mean, e^{2 log_scale})``.

    The outermost bins extend to -inf / +inf, so the probabilities of the 256 bins sum to 1.
    Returns natural-log likelihood elementwise, the shape of ``x``.
    """
    centered = x - mean
    inv_std = torch.exp(-log_scale)
    cdf_plus = _approx_std_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(
        x < -0.999,
        log_cdf_plus,
        torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))),
    )


def _mean_flat(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=tuple(range(1, x.dim())))


def multiscale_mse(err: torch.Tensor, factors: tuple[int, ...] = (1, 2, 4, 8, 16)) -> torch.Tensor:
    """Per-sample MSE of ``err`` averaged over spatial scales, each scale normalised by its noise variance.

    For each factor ``d`` the error is average-pooled over ``d x d`` blocks; pooling divides the
    variance of white noise by ``d^2``, so the pooled MSE is multiplied by ``d^2`` (every scale then
    weighs the same for an error as large as the noise itself). The last scale is the per-channel
    spatial mean (the image's mean colour), weighted by the number of pixels ``H * W``:

        L_ms = mean over scales s of  n_s * mean((pool_s(eps - eps_hat))^2),  n_s = pixels pooled

    This is the multiscale loss of Hoogeboom, Heek & Salimans (2023, "simple diffusion", Sec. 3.3)
    with the global mean added as the coarsest scale. Plain epsilon-MSE weighs the mean colour
    by ``1 / (H W)`` of the loss (1 / 8192 at 64x128), so a network can ignore it and still reach a
    low loss; samplers then turn the starting noise's mean into a whole-image colour cast.

    Args:
        err: ``(B, C, H, W)`` error ``eps - eps_hat``.
        factors: pooling factors; factors that do not divide ``H`` and ``W`` are skipped.
    Returns:
        ``(B,)`` loss.
    """
    h, w = err.shape[-2:]
    terms = []
    for d in factors:
        if h % d or w % d:
            continue
        pooled = err if d == 1 else torch.nn.functional.avg_pool2d(err, d)
        terms.append(_mean_flat(pooled**2) * d * d)
    terms.append(_mean_flat(err.mean(dim=(-2, -1)) ** 2) * h * w)
    return torch.stack(terms).mean(0)


class GaussianDiffusion:
    """The schedule and the closed forms of a (possibly respaced) Gaussian diffusion.

    Args:
        betas: ``(S,)`` betas of the (respaced) chain.
        timesteps: ``(S,)`` original time index of each step (what the model is called with).
        config: the :class:`DiffusionConfig`.
    """

    def __init__(self, config: DiffusionConfig, betas: torch.Tensor | None = None, timesteps: torch.Tensor | None = None):
        self.config = config
        if betas is None:
            betas = make_betas(config.beta_schedule, config.num_timesteps)
        self.betas = betas.double()
        self.num_steps = int(self.betas.shape[0])
        self.timesteps = (
            torch.arange(self.num_steps, dtype=torch.long) if timesteps is None else timesteps.long().clone()
        )
        b = self.betas
        self.alphas = 1.0 - b
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - self.alphas_cumprod).sqrt()
        self.sqrt_recip_alphas_cumprod = (1.0 / self.alphas_cumprod).sqrt()
        self.sqrt_recipm1_alphas_cumprod = (1.0 / self.alphas_cumprod - 1.0).sqrt()
        self.posterior_variance = b * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # beta_tilde_0 = 0: clip the log at t = 0 to beta_tilde_1 (as in improved DDPM);
        # a one-step chain has no beta_tilde_1 and uses its beta_0.
        first = self.posterior_variance[1:2] if self.num_steps > 1 else b[:1]
        self.posterior_log_variance_clipped = torch.log(torch.cat([first, self.posterior_variance[1:]]))
        self.posterior_mean_coef1 = b * self.alphas_cumprod_prev.sqrt() / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * self.alphas.sqrt() / (1.0 - self.alphas_cumprod)

    # ------------------------------------------------------------------ respacing
    def respaced(self, steps: int | list[int]) -> GaussianDiffusion:
        """A chain over a subsequence of the steps (evenly spaced when ``steps`` is an int).

        New betas: ``beta'_i = 1 - abar_{t_i} / abar_{t_{i-1}}`` so the kept ``abar`` are exact.
        An int keeps the first and the last step (``steps >= 2``); ``steps = 1`` keeps the
        last step only, so a one-step chain still starts from pure noise.
        """
        if isinstance(steps, int):
            if not 1 <= steps <= self.num_steps:
                raise GescoInputError(f"steps must be in [1, {self.num_steps}], got {steps}")
            if steps == 1:
                keep = [self.num_steps - 1]
            else:
                keep = sorted({int(round(x)) for x in torch.linspace(0, self.num_steps - 1, steps).tolist()})
        else:
            keep = sorted(set(int(s) for s in steps))
            if not keep or keep[0] < 0 or keep[-1] >= self.num_steps:
                raise GescoInputError(f"kept steps must be a non-empty subset of [0, {self.num_steps}), got {steps}")
        last = 1.0
        new_betas = []
        for i in keep:
            new_betas.append(1.0 - float(self.alphas_cumprod[i]) / last)
            last = float(self.alphas_cumprod[i])
        return GaussianDiffusion(
            self.config, torch.tensor(new_betas, dtype=torch.float64), self.timesteps[torch.tensor(keep)]
        )

    # ------------------------------------------------------------------ closed forms
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Eq. (4): ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` (``t`` indexes this chain)."""
        n = x0.dim()
        return _gather(self.sqrt_alphas_cumprod, t, n) * x0 + _gather(self.sqrt_one_minus_alphas_cumprod, t, n) * noise

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor):
        """Eq. (5-6): mean, variance and clipped log-variance of ``q(x_{t-1} | x_t, x_0)``."""
        n = x0.dim()
        mean = _gather(self.posterior_mean_coef1, t, n) * x0 + _gather(self.posterior_mean_coef2, t, n) * xt
        return mean, _gather(self.posterior_variance, t, n), _gather(self.posterior_log_variance_clipped, t, n)

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Invert Eq. (4): ``x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``."""
        n = xt.dim()
        return _gather(self.sqrt_recip_alphas_cumprod, t, n) * xt - _gather(self.sqrt_recipm1_alphas_cumprod, t, n) * eps

    def predict_eps(self, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Eq. (4) solved for the noise: ``eps = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t)``
        (the inverse of :meth:`predict_x0`)."""
        n = xt.dim()
        return (xt - _gather(self.sqrt_alphas_cumprod, t, n) * x0) / _gather(self.sqrt_one_minus_alphas_cumprod, t, n)

    def model_log_variance(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Eq. (7), learned range: ``f log beta_t + (1 - f) log beta_tilde_t``, ``f = (v + 1) / 2``."""
        n = v.dim()
        min_log = _gather(self.posterior_log_variance_clipped, t, n)
        max_log = _gather(torch.log(self.betas), t, n)
        frac = (v.clamp(-1, 1) + 1.0) / 2.0
        return frac * max_log + (1.0 - frac) * min_log

    def p_mean_variance(self, eps: torch.Tensor, v: torch.Tensor | None, xt: torch.Tensor, t: torch.Tensor, clip: bool = True):
        """Mean and log-variance of ``p(x_{t-1} | x_t)`` from the model outputs, and the predicted ``x_0``.

        Without a learned variance (``v is None``) the posterior variance ``beta_tilde`` is used.
        """
        x0 = self.predict_x0(xt, t, eps)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        mean, _, post_logvar = self.q_posterior(x0, xt, t)
        logvar = self.model_log_variance(v, t) if v is not None else post_logvar
        return mean, logvar, x0

    # ------------------------------------------------------------------ losses
    def vlb_terms(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Per-sample ``L_t`` of Eq. (9) in bits per dimension.

        ``KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))`` for ``t > 0``, and the discretised decoder
        NLL ``-log p(x_0 | x_1)`` for ``t = 0``.
        """
        true_mean, _, true_logvar = self.q_posterior(x0, xt, t)
        mean, logvar, _ = self.p_mean_variance(eps, v, xt, t, clip=False)
        kl = _mean_flat(normal_kl(true_mean, true_logvar, mean, logvar)) / math.log(2.0)
        nll = -_mean_flat(discretized_gaussian_log_likelihood(x0, mean, 0.5 * logvar)) / math.log(2.0)
        return torch.where(t == 0, nll, kl)

    def training_losses(
        self,
        model_out: torch.Tensor,
        x0: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        mse_weight: torch.Tensor | None = None,
        multiscale: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Eq. (10), per sample: ``mse_weight * ||eps - eps_theta||^2 + lambda * T * L_t``.

        Args:
            model_out: ``(B, 2C, H, W)`` (``eps``, ``v``) or ``(B, C, H, W)`` without a learned variance.
            mse_weight: optional ``(B,)`` weights of the epsilon-MSE (e.g. min-SNR); 1 in the paper.
            multiscale: replace the epsilon-MSE of ``L_simple`` by :func:`multiscale_mse` (a
                deviation from the paper; the reported ``mse`` stays the plain one).
        Returns:
            dict of ``(B,)`` tensors: ``loss``, ``mse``, ``vb``.
        """
        c = x0.shape[1]
        if self.config.learn_sigma:
            eps, v = model_out[:, :c], model_out[:, c:]
        else:
            eps, v = model_out, None
        mse = _mean_flat((noise - eps) ** 2)
        out = {"mse": mse}
        simple = mse
        if multiscale:
            simple = out["mse_ms"] = multiscale_mse(noise - eps)
        loss = simple if mse_weight is None else simple * mse_weight
        if v is not None:
            # the VLB trains only the variance: the mean sees a stopped gradient
            vb = self.vlb_terms(x0, xt, t, eps.detach(), v) * self.num_steps
            out["vb"] = vb
            loss = loss + self.config.vlb_weight * vb
        out["loss"] = loss
        return out

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio ``abar_t / (1 - abar_t)`` of step ``t``, ``(B,)`` float32."""
        a = self.alphas_cumprod.to(t.device)[t]
        return (a / (1.0 - a)).float()

    def min_snr_weight(self, t: torch.Tensor, gamma: float = 5.0) -> torch.Tensor:
        """Min-SNR-gamma weight of the epsilon-MSE (Hang et al. 2023): ``min(SNR, gamma) / SNR``."""
        s = self.snr(t)
        return torch.clamp(s, max=gamma) / s
