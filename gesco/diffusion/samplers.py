"""Samplers of the semantic diffusion model: short functions over a denoiser.

Every sampler draws images from ``p(x_0)`` by integrating the reverse process of a
:class:`~gesco.diffusion.gaussian.GaussianDiffusion` with a *denoiser*
(:mod:`gesco.diffusion.guidance`): ``denoiser(x_t, t) -> (eps, v or None)``, where ``t``
holds the **original** time indices (``0 <= t < T``) and ``v`` in ``[-1, 1]`` is the
learned-range variance output (paper Eq. 7), ``None`` without a learned variance.

Notation: ``abar_t`` the cumulative product of ``1 - beta_t``; in the ODE solvers (the
DPM-Solver convention) ``alpha_t = sqrt(abar_t)``, ``sigma_t = sqrt(1 - abar_t)`` and
``lambda_t = log(alpha_t / sigma_t)`` (half the log-SNR); ``x0_hat = (x_t - sigma_t eps) /
alpha_t`` is the predicted clean image (inverse of paper Eq. 4), clamped to ``[-1, 1]`` when
``clip`` is set.

The registry (:data:`REGISTRY`): each sampler is a :class:`~gesco.sampler_specs.SamplerSpec`
(what it is: its grid, stochastic or not, reads the learned variance or not, which checkpoints
it runs; declared in the torch-free :mod:`gesco.sampler_specs`) bound to a short pure function
over a denoiser and a **time grid**, as k-diffusion's samplers take a denoiser and its sigmas::

    grid = make_grid(diffusion, spec, steps)                 # a (respaced) chain, noisiest step last
    x_0  = f(denoiser, x_T, grid, noise=..., clip=..., progress=..., **options)

:func:`sample` is the one entry point by name (it makes ``x_T``, the grid and the noise source
from the generators); :func:`~gesco.sampler_specs.network_evaluations` gives the cost of a call
from the spec. All noise comes from the ``torch.Generator`` given (one per image: an image's
noise does not depend on its batch); same seed, same images.

Functions (each one registry entry or more):

* :func:`ancestral` (``"ancestral"``, ``"respaced"``): the paper's ancestral sampler (DDPM,
  Ho et al. 2020; paper Eq. 5-7), ``x_{t-1} = mu_theta(x_t, t) + exp(logvar / 2) z``, over every
  step of its grid: all 1000 for the full chain (the paper's setting); on a respaced grid it is
  the respaced sampler of Nichol & Dhariwal (2021).
* :func:`ddim` (``"ddim"``): DDIM (Song, Meng & Ermon 2021, Eq. 12), deterministic for ``eta = 0``.
* :func:`dpmpp_2m` (``"dpmpp-2m"``): DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++",
  Algorithm 2), the second-order multistep ODE solver in the data-prediction form.
* :func:`dpmpp_2m_sde` (``"dpmpp-2m-sde"``, ``"dpmpp-2m-sde-ode-mean"``): SDE-DPM-Solver++(2M)
  (Lu et al. 2022, its solver for the reverse diffusion SDE), the same multistep scheme with
  noise: it injects fresh noise at every step, like the ancestral sampler, so errors of the
  network at one step are partly washed out by the next (Karras et al. 2022, section 4) instead
  of being carried to the end. As ``"dpmpp-2m-sde-ode-mean"`` (``ode_mean=True``) the image's
  per-channel mean takes the deterministic step instead (fewer colour errors at few steps).
* :func:`distilled` (``"distilled"``): deterministic DDIM over the chain of a *distilled*
  student (:mod:`gesco.diffusion.distill`, progressive distillation with guidance folded in):
  one unguided forward per step; the student's output is read in its parametrisation (``"v"``
  by default), not as ``eps``.

Time grids (:func:`make_grid`): the full chain; ``steps`` original indices from ``T - 1`` down
to ``0``, both ends included (``steps = 1``: ``T - 1`` only), evenly spaced in time for the
respaced ancestral sampler (improved DDPM) and in log-SNR for DDIM and both DPM-Solver++
variants by default (:func:`spaced_chain`); the last network evaluation is then at ``t = 0``
(``sigma_0 = 0.01`` for the linear schedule) and the sampler returns its clean estimate. A
distilled student's grid (:func:`distilled_timesteps`) has no evaluation at ``t = 0``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from gesco.defaults import (  # noqa: F401 - re-exported
    DEFAULT_MEAN_TEMPERATURE,
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    GUIDED_SAMPLER,
    GUIDED_STEPS,
    MEAN_TEMPERATURE_RANGE,
)
from gesco.diffusion.gaussian import GaussianDiffusion
from gesco.diffusion.guidance import Denoiser
from gesco.errors import GescoInputError
from gesco.sampler_specs import (  # noqa: F401 - re-exported: the registry's facts and name lists
    DISTILLED_SAMPLER,
    DISTILLED_SAMPLERS,
    GUIDANCE_ONLY_SAMPLERS,
    KNOWN_SAMPLERS,
    PARAMETRISATIONS,
    SAMPLERS,
    SPECS,
    NetworkEvaluations,
    SamplerSpec,
    network_evaluations,
    sampler_spec,
)

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after each network evaluation of a sampler."""

NoiseSource = Callable[[tuple[int, ...]], torch.Tensor]
"""``noise(shape) -> N(0, I)`` float32 of ``shape``, drawn from the images' generators
(:func:`noise_source`): a sampler's only source of randomness besides ``x_T``."""

class DistilledSamplerError(GescoInputError):
    """A distilled checkpoint asked for with a non-distilled sampler, another step count or
    guidance scale, or the ``"distilled"`` sampler asked of an ordinary checkpoint."""



# ---------------------------------------------------------------------------- helpers
#: one generator for the whole batch, or one per image (row ``i`` of every draw comes from
#: ``generators[i]``, so an image's noise does not depend on what else is in the batch)
Generators = torch.Generator | Sequence[torch.Generator] | None


def _noise(shape: tuple[int, ...], generator: Generators, device: torch.device | str) -> torch.Tensor:
    """Standard normal noise ``shape`` float32 on ``device``, drawn on the generator's device.

    Drawing on the generator's device (then moving) keeps a CPU generator usable, and its
    samples identical, whatever ``device`` the model runs on. With one generator per image
    (a sequence of ``shape[0]`` generators), row ``i`` is drawn from ``generator[i]``.
    """
    if generator is None or isinstance(generator, torch.Generator):
        draw_on = generator.device if generator is not None else torch.device(device)
        return torch.randn(shape, generator=generator, device=draw_on, dtype=torch.float32).to(device)
    gens = list(generator)
    if len(gens) != shape[0]:
        raise GescoInputError(f"{len(gens)} generators for a batch of {shape[0]}")
    rows = [torch.randn(tuple(shape[1:]), generator=g, device=g.device, dtype=torch.float32).to(device) for g in gens]
    return torch.stack(rows)


def noise_source(generator: Generators, device: torch.device | str) -> NoiseSource:
    """The :data:`NoiseSource` of :func:`sample`: ``noise(shape)`` draws with :func:`_noise`."""
    return lambda shape: _noise(tuple(shape), generator, device)


def _initial(shape, x_T, generator, device) -> torch.Tensor:
    """``x_T``: the given start (float32 on ``device``) or fresh noise ``N(0, I)``."""
    if x_T is None:
        return _noise(tuple(shape), generator, device)
    if tuple(x_T.shape) != tuple(shape):
        raise GescoInputError(f"x_T has shape {tuple(x_T.shape)}, expected {tuple(shape)}")
    return x_T.to(device=device, dtype=torch.float32)


def check_mean_temperature(tau: float) -> float:
    """``tau`` as a float when it is a finite number in :data:`~gesco.defaults.MEAN_TEMPERATURE_RANGE`.

    Raises:
        GescoInputError: ``mean temperature must be in [0, 1], got ...``.
    """
    lo, hi = MEAN_TEMPERATURE_RANGE
    try:
        value = float(tau)
    except (TypeError, ValueError):
        raise GescoInputError(f"mean temperature must be a number in [{lo:g}, {hi:g}], got {tau!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise GescoInputError(f"mean temperature must be in [{lo:g}, {hi:g}], got {tau!r}")
    return value


def scale_start_mean(x_T: torch.Tensor, tau: float) -> torch.Tensor:
    """The starting noise with its per-channel spatial mean scaled by the *mean temperature* ``tau``.

    With ``m = mean_{h,w} x_T`` (``(B, C, 1, 1)``, one number per image and channel) and
    ``r = x_T - m`` (the zero-mean part)::

        x_T'  =  r + tau m  =  x_T - (1 - tau) m

    For ``x_T ~ N(0, I)`` over ``N = H W`` pixels, ``m ~ N(0, 1 / N)`` per channel, independent of
    ``r``; ``x_T'`` is Gaussian with the same zero-mean part and its mean's variance ``tau^2 / N``.

    Why: under ``dpmpp-2m-sde-ode-mean`` (:func:`dpmpp_2m_sde` with ``ode_mean``) the image's
    per-channel mean follows the deterministic ODE from ``mean(x_T)``, so the seed reaches the
    generated image's mean colour only through ``m``. Scaling it scales the seed's hold on the
    mean colour (measured: the spread over seeds falls in proportion to ``tau``,
    docs/colour/README.md section 6.2), at the price of sampling the brightness with less than
    its true spread given the maps. ``tau = 1`` returns ``x_T`` itself (the paper's sampling);
    ``tau = 0`` a noise of exactly zero mean. The other samplers also reach the mean through their
    per-step noise, which this leaves alone.

    Args:
        x_T: ``(B, C, H, W)`` float starting noise.
        tau: in :data:`~gesco.defaults.MEAN_TEMPERATURE_RANGE`.
    Returns:
        ``(B, C, H, W)``, the same dtype and device (``x_T`` itself when ``tau == 1``).
    Raises:
        GescoInputError: ``tau`` outside the range or not finite; ``x_T`` not 4-D.
    """
    tau = check_mean_temperature(tau)
    if x_T.dim() != 4:
        raise GescoInputError(f"x_T must be (B, C, H, W), got shape {tuple(x_T.shape)}")
    if tau == 1.0:
        return x_T
    return x_T - (1.0 - tau) * x_T.mean(dim=(2, 3), keepdim=True)


def _times(t: int, batch: int, device) -> torch.Tensor:
    """``(batch,)`` long tensor filled with the time index ``t``."""
    return torch.full((batch,), int(t), dtype=torch.long, device=device)


def _x0_from_eps(x: torch.Tensor, eps: torch.Tensor, abar: float, clip: bool) -> torch.Tensor:
    """``x0_hat = (x_t - sqrt(1 - abar) eps) / sqrt(abar)``, clamped to ``[-1, 1]`` if ``clip``."""
    x0 = (x - math.sqrt(1.0 - abar) * eps) / math.sqrt(abar)
    return x0.clamp(-1.0, 1.0) if clip else x0


# ---------------------------------------------------------------------------- time steps
SPACINGS = ("uniform", "logsnr")


def spaced_chain(diffusion: GaussianDiffusion, steps: int, spacing: str = "uniform") -> GaussianDiffusion:
    """The chain of ``steps`` steps a few-step sampler runs on: ``diffusion.respaced(...)``.

    Spacings (both keep the first and last step for ``steps >= 2``; ``steps = 1`` keeps the
    last one):

    * ``"uniform"``: ``steps`` indices evenly spaced in time (improved DDPM's respacing,
      Nichol & Dhariwal 2021): ``diffusion.respaced(steps)``.
    * ``"logsnr"``: evenly spaced in ``lambda = log(alpha / sigma)`` (Lu et al. 2022 use this
      for pixel-space models): each target ``lambda`` goes to the step with the nearest
      ``lambda``; where several land on the same step (near ``t = 0``, where the linear
      schedule's ``lambda`` moves fastest) the later ones move to the next free step, so the
      chain has exactly ``steps`` steps.

    Uniform time steps leave one large log-SNR jump at the clean end (``lambda`` goes from
    2.5 at ``t = 20`` to 4.6 at ``t = 0`` for 50 of 1000 linear-schedule steps, whereas the
    whole chain spans 9.7); the ODE solvers lose accuracy there (DPM-Solver++(2M) overshoots
    the data variance by a third on the Gaussian test problem), so they default to ``"logsnr"``.

    Raises:
        GescoInputError: ``steps`` not an int in ``[1, S]`` or an unknown ``spacing``.
    """
    n = diffusion.num_steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= n:
        raise GescoInputError(f"steps must be an int in [1, {n}], got {steps!r}")
    if spacing not in SPACINGS:
        raise GescoInputError(f"unknown spacing {spacing!r}; known: {', '.join(SPACINGS)}")
    if spacing == "uniform" or steps == 1:
        return diffusion.respaced(steps)
    abar = diffusion.alphas_cumprod
    neg_lam = -0.5 * torch.log(abar / (1.0 - abar))  # increasing in the step index
    targets = torch.linspace(float(neg_lam[0]), float(neg_lam[-1]), steps, dtype=torch.float64)
    right = torch.searchsorted(neg_lam, targets).clamp(1, n - 1)
    nearest = torch.where(targets - neg_lam[right - 1] <= neg_lam[right] - targets, right - 1, right)
    keep: list[int] = []
    for j, idx in enumerate(nearest.tolist()):
        idx = max(idx, keep[-1] + 1) if keep else idx  # strictly increasing
        keep.append(min(idx, n - steps + j))  # leave room for the steps still to come
    return diffusion.respaced(keep)


# ---------------------------------------------------------------------------- ancestral
@torch.no_grad()
def ancestral(
    denoiser: Denoiser,
    x: torch.Tensor,
    grid: GaussianDiffusion,
    *,
    noise: NoiseSource,
    clip: bool = True,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Ancestral sampling over every step of ``grid`` (paper Eq. 5-7).

    For ``i = S-1, ..., 0`` (``S = grid.num_steps``)::

        eps, v   = denoiser(x_i, grid.timesteps[i])
        x0_hat   = (x_i - sqrt(1 - abar_i) eps) / sqrt(abar_i)        (clamped if clip)
        mean     = c0_i x0_hat + ct_i x_i                             (posterior mean, Eq. 6)
        logvar   = f log beta_i + (1 - f) log beta_tilde_i, f = (v+1)/2   (Eq. 7; beta_tilde if v is None)
        x_{i-1}  = mean + exp(logvar / 2) z,  z ~ N(0, I)             (no noise at i = 0)

    On the full chain (``S = T = 1000``) this is the paper's sampler. On a respaced grid
    (``diffusion.respaced(n)``) it is the respaced sampler of Nichol & Dhariwal (2021): the
    denoiser still sees original indices, the coefficients come from the respaced betas
    ``beta'_i = 1 - abar_{t_i} / abar_{t_{i-1}}``, and the learned variance interpolates
    between the respaced ``beta'_i`` and ``beta_tilde'_i`` (as in improved DDPM).

    Args:
        denoiser: ``(x (B,C,H,W) float32, t (B,) long) -> (eps, v or None)``, each ``(B,C,H,W)``.
        x: ``x_T`` ``(B, C, H, W)`` float32, on the device the denoiser runs on.
        grid: the chain to run (full or respaced; :func:`make_grid`).
        noise: the source of every ``z`` (:data:`NoiseSource`).
        clip: clamp ``x0_hat`` to ``[-1, 1]``.
        progress: ``progress(done, total)`` after each step.
    Returns:
        ``x``'s shape, float32 samples on its device (in ``[-1, 1]`` when ``clip``).
    """
    device, n = x.device, grid.num_steps
    for k, i in enumerate(reversed(range(n))):
        eps, v = denoiser(x, _times(grid.timesteps[i], x.shape[0], device))
        mean, logvar, _ = grid.p_mean_variance(eps, v, x, _times(i, x.shape[0], device), clip=clip)
        if i > 0:
            x = mean + torch.exp(0.5 * logvar) * noise(x.shape)
        else:
            x = mean  # last step: no noise (mean = x0_hat, since c0_0 = 1 and ct_0 = 0)
        if progress is not None:
            progress(k + 1, n)
    return x


# ---------------------------------------------------------------------------- DDIM
@torch.no_grad()
def ddim(
    denoiser: Denoiser,
    x: torch.Tensor,
    grid: GaussianDiffusion,
    *,
    noise: NoiseSource,
    eta: float = 0.0,
    clip: bool = True,
    progress: Progress | None = None,
) -> torch.Tensor:
    """DDIM (Song et al. 2021, Eq. 12), one network evaluation per step of ``grid``.

    With ``a = abar_{t_i}``, ``a' = abar_{t_{i-1}}`` (``a' = 1`` after the last step)::

        x0_hat    = (x - sqrt(1 - a) eps) / sqrt(a)          (clamped if clip)
        eps_hat   = (x - sqrt(a) x0_hat) / sqrt(1 - a)        (eps consistent with the clamped x0)
        sigma     = eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a')
        x_{i-1}   = sqrt(a') x0_hat + sqrt(1 - a' - sigma^2) eps_hat + sigma z

    ``eta = 0`` is the deterministic DDIM ODE sampler; ``eta = 1`` has the variance of
    DDPM's ``beta_tilde``. The learned variance ``v`` is not used.

    Args:
        eta: noise scale (>= 0).
        Other arguments as :func:`ancestral` (``grid``: :func:`spaced_chain`, log-SNR by default).
    Returns:
        ``x``'s shape, float32 samples on its device.
    Raises:
        GescoInputError: ``eta < 0``.
    """
    if eta < 0:
        raise GescoInputError(f"eta must be >= 0, got {eta}")
    abar = grid.alphas_cumprod.tolist()
    for k, i in enumerate(reversed(range(grid.num_steps))):
        a, a_prev = abar[i], (abar[i - 1] if i > 0 else 1.0)
        eps, _ = denoiser(x, _times(grid.timesteps[i], x.shape[0], x.device))
        x0 = _x0_from_eps(x, eps, a, clip)
        eps = (x - math.sqrt(a) * x0) / math.sqrt(1.0 - a)
        sigma = eta * math.sqrt((1.0 - a_prev) / (1.0 - a)) * math.sqrt(1.0 - a / a_prev)
        x = math.sqrt(a_prev) * x0 + math.sqrt(max(1.0 - a_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * noise(x.shape)
        if progress is not None:
            progress(k + 1, grid.num_steps)
    return x


# ---------------------------------------------------------------------------- DPM-Solver++(2M)
@torch.no_grad()
def dpmpp_2m(
    denoiser: Denoiser,
    x: torch.Tensor,
    grid: GaussianDiffusion,
    *,
    noise: NoiseSource,
    clip: bool = True,
    progress: Progress | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), data prediction, one evaluation per step.

    Times ``t_0 > t_1 > ... > t_{N-1}``: the steps of ``grid`` (:func:`spaced_chain`, log-SNR
    uniform by default), from ``T - 1`` down to ``0``. With ``alpha = sqrt(abar)``,
    ``sigma = sqrt(1 - abar)``, ``lambda = log(alpha / sigma)``, ``D_i = x0_hat(x_{t_i}, t_i)``
    and ``h_i = lambda_{t_i} - lambda_{t_{i-1}}``::

        first step (first order, = DDIM):
            x_{t_1} = (sigma_1 / sigma_0) x_{t_0} - alpha_1 (exp(-h_1) - 1) D_0
        then, with r_i = h_{i-1} / h_i:
            D'      = (1 + 1 / (2 r_i)) D_{i-1} - 1 / (2 r_i) D_{i-2}
            x_{t_i} = (sigma_i / sigma_{i-1}) x_{t_{i-1}} - alpha_i (exp(-h_i) - 1) D'
        final step: the clean estimate D_{N-1} (at t_{N-1} = 0 when N >= 2).

    The noise only enters through ``x_T``; the learned variance ``v`` is not used.

    Args:
        As :func:`ancestral` (``noise`` is not drawn from).
    Returns:
        ``x``'s shape, float32 samples on its device.
    """
    return _multistep_2m(denoiser, x, grid, _ode_2m_update, clip=clip, progress=progress)


def _ode_2m_update(x, d, d_prev, i, alpha, sigma, lam):
    """One DPM-Solver++(2M) step ``x_{t_i} -> x_{t_{i+1}}`` (see :func:`dpmpp_2m`)."""
    h = lam[i + 1] - lam[i]
    if d_prev is None:
        d_eff = d
    else:
        r = (lam[i] - lam[i - 1]) / h
        d_eff = (1.0 + 1.0 / (2.0 * r)) * d - (1.0 / (2.0 * r)) * d_prev
    return (sigma[i + 1] / sigma[i]) * x - alpha[i + 1] * math.expm1(-h) * d_eff


def _sde_2m_update(x, d, d_prev, i, alpha, sigma, lam, noise):
    """One SDE-DPM-Solver++(2M) step with the fresh noise ``noise`` (see :func:`dpmpp_2m_sde`)."""
    h = lam[i + 1] - lam[i]
    keep = -math.expm1(-2.0 * h)  # 1 - exp(-2h)
    x = (sigma[i + 1] / sigma[i]) * math.exp(-h) * x + alpha[i + 1] * keep * d
    if d_prev is not None:
        r = (lam[i] - lam[i - 1]) / h
        x = x + alpha[i + 1] * keep / (2.0 * r) * (d - d_prev)
    return x + sigma[i + 1] * math.sqrt(keep) * noise


@torch.no_grad()
def dpmpp_2m_sde(
    denoiser: Denoiser,
    x: torch.Tensor,
    grid: GaussianDiffusion,
    *,
    noise: NoiseSource,
    clip: bool = True,
    progress: Progress | None = None,
    ode_mean: bool = False,
    ode_tail: int = 0,
) -> torch.Tensor:
    """SDE-DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", the SDE solver), one evaluation per step.

    The stochastic counterpart of :func:`dpmpp_2m`, in the same notation (times of
    :func:`spaced_chain`, ``D_i = x0_hat(x_{t_i}, t_i)``, ``h_i = lambda_{t_i} - lambda_{t_{i-1}}``,
    ``r_i = h_{i-1} / h_i``), with fresh noise ``z_i ~ N(0, I)`` at every step::

        x_{t_i} = (sigma_i / sigma_{i-1}) exp(-h_i) x_{t_{i-1}}
                  + alpha_i (1 - exp(-2 h_i)) D_{i-1}
                  + alpha_i (1 - exp(-2 h_i)) / (2 r_i) (D_{i-1} - D_{i-2})   (from the 2nd step)
                  + sigma_i sqrt(1 - exp(-2 h_i)) z_i
        final step: the clean estimate D_{N-1}.

    Without the second-order term this is the DDPM posterior step ``q(x_{t_i} | x_{t_{i-1}},
    x0 = D_{i-1})`` (DDIM with ``eta = 1``): mean and variance ``sigma_i^2 (1 - exp(-2 h_i))``.
    The learned variance ``v`` is not used.

    ``ode_mean`` (sampler ``"dpmpp-2m-sde-ode-mean"``): the per-channel spatial mean of ``x``
    (3 of the ``3 H W`` orthonormal directions) takes the deterministic DPM-Solver++(2M) step of
    :func:`dpmpp_2m` instead, and the noise is projected off it; every other direction
    keeps the step above. DDIM's posterior family allows a separate ``eta`` per orthonormal
    direction with the same marginals (Song et al. 2021, Eq. 7, applied per direction), so this
    is, at first order, ``eta = 0`` on the image mean and ``eta = 1`` elsewhere. Why: the U-Net sees its input's
    mean colour only through the mean path (docs/evaluation/colour/README.md), and with few
    steps each step's fresh noise moves the mean colour by a random amount that the next
    few clean estimates no longer correct (docs/distillation.md, "Colour at 8 steps").

    Args:
        ode_mean: the image mean follows the ODE (see above).
        ode_tail: the last ``ode_tail`` of the ``N - 1`` updates (``N = grid.num_steps``) take the deterministic
            DPM-Solver++(2M) step (no fresh noise): a sampler *ending* that stops injecting
            noise near the clean end (Karras et al. 2022 limit the stochasticity to a range of
            noise levels the same way). 0 (default): every update is stochastic. Measured in
            ``bench/bench_sampler_ending.py`` (grain against mIoU).
        Other arguments as :func:`ancestral` (``noise`` draws the ``z_i``).
    Returns:
        ``x``'s shape, float32 samples on its device.
    Raises:
        GescoInputError: ``ode_tail`` not an int in ``[0, N - 1]``.
    """
    steps = grid.num_steps
    if isinstance(ode_tail, bool) or not isinstance(ode_tail, int) or not 0 <= ode_tail < max(steps, 1):
        raise GescoInputError(f"ode_tail must be an int in [0, {max(steps - 1, 0)}], got {ode_tail!r}")

    def update(x, d, d_prev, i, alpha, sigma, lam):
        if i >= len(alpha) - 1 - ode_tail:  # the deterministic ending: no noise drawn
            return _ode_2m_update(x, d, d_prev, i, alpha, sigma, lam)
        nxt = _sde_2m_update(x, d, d_prev, i, alpha, sigma, lam, noise(tuple(x.shape)))
        if not ode_mean:
            return nxt
        dims = tuple(range(2, x.dim()))  # the per-channel image mean: deterministic, the ODE's step
        ode = _ode_2m_update(x.mean(dim=dims, keepdim=True), d.mean(dim=dims, keepdim=True),
                             None if d_prev is None else d_prev.mean(dim=dims, keepdim=True), i, alpha, sigma, lam)
        return nxt - nxt.mean(dim=dims, keepdim=True) + ode

    return _multistep_2m(denoiser, x, grid, update, clip=clip, progress=progress)


def _multistep_2m(denoiser, x, grid, update, *, clip, progress):
    """The loop both DPM-Solver++(2M) variants share: the steps of ``grid`` in descending
    order, one network evaluation and clean estimate ``D_i`` per step, then
    ``x = update(x, D_i, D_{i-1}, i, alpha, sigma, lambda)``; the last step returns ``D``."""
    abar = list(reversed(grid.alphas_cumprod.tolist()))  # index 0: the noisiest step
    times = list(reversed(grid.timesteps.tolist()))
    alpha = [math.sqrt(a) for a in abar]
    sigma = [math.sqrt(1.0 - a) for a in abar]
    lam = [math.log(al / si) for al, si in zip(alpha, sigma)]

    d_prev: torch.Tensor | None = None
    for i, t in enumerate(times):
        eps, _ = denoiser(x, _times(t, x.shape[0], x.device))
        d = _x0_from_eps(x, eps, abar[i], clip)
        if progress is not None:
            progress(i + 1, len(times))
        if i == len(times) - 1:
            return d  # final step: the clean estimate
        x = update(x, d, d_prev, i, alpha, sigma, lam)
        d_prev = d
    raise AssertionError("unreachable: the loop returns at its last step")


# ---------------------------------------------------------------------------- distilled students
def distilled_timesteps(num_timesteps: int, steps: int) -> list[int]:
    """Original time indices of a distilled chain of ``steps`` steps, ascending.

    ``t_p = round(p T / steps) - 1`` for ``p = 1..steps`` (rounded half up, in integers), the
    uniform grid of Salimans & Ho (2022) on ``T`` discrete steps; position ``p = 0`` is the
    clean image (``abar = 1``) that the last step lands on. The grids are nested: the grid of
    ``K`` steps is every other point of the grid of ``2K`` steps (``t_p`` of ``K`` equals
    ``t_{2p}`` of ``2K``), so one student step spans exactly two teacher steps.

    Raises:
        GescoInputError: ``steps`` not an int in ``[1, num_timesteps]``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= num_timesteps:
        raise GescoInputError(f"steps must be an int in [1, {num_timesteps}], got {steps!r}")
    return [(2 * p * num_timesteps + steps) // (2 * steps) - 1 for p in range(1, steps + 1)]


def prediction_to_x0(pred: torch.Tensor, x: torch.Tensor, alpha, sigma, parametrisation: str) -> torch.Tensor:
    """The clean-image estimate of a network output in ``parametrisation``.

    With ``x = alpha x0 + sigma eps`` (``alpha = sqrt(abar)``, ``sigma = sqrt(1 - abar)``):

    * ``"v"`` (Salimans & Ho 2022): ``v = alpha eps - sigma x0``, so ``x0 = alpha x - sigma v``;
    * ``"x0"``: the output is ``x0``;
    * ``"eps"``: ``x0 = (x - sigma eps) / alpha`` (unstable as ``alpha -> 0``).

    ``alpha`` and ``sigma`` are floats or tensors broadcasting against ``x``.
    """
    if parametrisation == "v":
        return alpha * x - sigma * pred
    if parametrisation == "x0":
        return pred
    if parametrisation == "eps":
        return (x - sigma * pred) / alpha
    raise GescoInputError(f"unknown parametrisation {parametrisation!r}; known: {', '.join(PARAMETRISATIONS)}")


@torch.no_grad()
def distilled(
    student: Denoiser,
    x: torch.Tensor,
    grid: GaussianDiffusion,
    *,
    noise: NoiseSource,
    parametrisation: str = "v",
    clip: bool = True,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Deterministic DDIM over a distilled student's chain (one network evaluation per step).

    Positions ``p = N, ..., 1`` of ``grid`` (the student's: :func:`distilled_timesteps`, or the
    ``timesteps`` its card records; :func:`make_grid`), with ``a = abar_{t_p}`` and
    ``a' = abar_{t_{p-1}}`` (``a' = 1`` at ``p = 1``)::

        pred, _   = student(x, t_p)                  (first C output channels; no guidance pass)
        x0_hat    = prediction_to_x0(pred, x, sqrt(a), sqrt(1 - a), parametrisation)   (clamped if clip)
        eps_hat   = (x - sqrt(a) x0_hat) / sqrt(1 - a)
        x         = sqrt(a') x0_hat + sqrt(1 - a') eps_hat

    so the last step returns ``x0_hat``. This is :func:`ddim` with ``eta = 0`` on the
    student's own grid (which has no evaluation at ``t = 0``), with the output read in the
    student's parametrisation.

    Args:
        student: ``(x, t) -> (pred, anything)``, e.g. ``guided_denoiser(model, y, 1.0)``: the
            guidance is folded into the student, so it is called once per step with the condition.
        parametrisation: ``"v"``, ``"x0"`` or ``"eps"`` (:func:`prediction_to_x0`).
        Other arguments as :func:`ancestral` (``noise`` is not drawn from).
    Returns:
        ``x``'s shape, float32 samples on its device.
    Raises:
        GescoInputError: an unknown ``parametrisation``.
    """
    if parametrisation not in PARAMETRISATIONS:
        raise GescoInputError(f"unknown parametrisation {parametrisation!r}; known: {', '.join(PARAMETRISATIONS)}")
    steps = grid.num_steps
    abar = grid.alphas_cumprod.tolist()
    for k, p in enumerate(reversed(range(steps))):
        a, a_prev = abar[p], (abar[p - 1] if p > 0 else 1.0)
        pred, _ = student(x, _times(grid.timesteps[p], x.shape[0], x.device))
        x0 = prediction_to_x0(pred.float(), x, math.sqrt(a), math.sqrt(1.0 - a), parametrisation)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        if p == 0:
            x = x0
        else:
            eps = (x - math.sqrt(a) * x0) / math.sqrt(1.0 - a)
            x = math.sqrt(a_prev) * x0 + math.sqrt(1.0 - a_prev) * eps
        if progress is not None:
            progress(k + 1, steps)
    return x


# ---------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Sampler:
    """A registry entry: a spec (:class:`~gesco.sampler_specs.SamplerSpec`) and its function
    with the spec's ``bound`` arguments applied."""

    spec: SamplerSpec
    function: Callable[..., torch.Tensor]


def _bind(spec: SamplerSpec) -> Sampler:
    function = globals().get(spec.function)
    if not callable(function):
        raise RuntimeError(f"sampler {spec.name!r}: no function {spec.function!r} in {__name__}")
    return Sampler(spec, functools.partial(function, **dict(spec.bound)) if spec.bound else function)


#: Every sampler by name, built from :data:`gesco.sampler_specs.SPECS` (a spec naming a
#: function this module lacks fails the import).
REGISTRY: dict[str, Sampler] = {spec.name: _bind(spec) for spec in SPECS}


def make_grid(
    diffusion: GaussianDiffusion,
    spec: SamplerSpec,
    steps: int | None,
    spacing: str | None = None,
    timesteps: Sequence[int] | None = None,
) -> GaussianDiffusion:
    """The time grid ``spec``'s sampler runs on, as a chain (:meth:`GaussianDiffusion.respaced`).

    * ``"full"``: ``diffusion`` itself (``steps`` must be ``None`` or ``T``);
    * ``"uniform"`` / ``"logsnr"``: :func:`spaced_chain` with ``steps`` steps and ``spacing``
      (default: the spec's grid);
    * ``"distilled"``: the student's grid of ``steps`` steps, :func:`distilled_timesteps` or
      the ascending ``timesteps`` its card records.

    Raises:
        GescoInputError: a step count the grid cannot have, an unknown spacing, or bad ``timesteps``.
    """
    if spec.grid == "full":
        if steps is not None and steps != diffusion.num_steps:
            raise GescoInputError(
                f"the ancestral sampler runs all {diffusion.num_steps} steps, got steps={steps}; "
                "use sampler='respaced' for fewer"
            )
        return diffusion
    if steps is None:
        raise GescoInputError(f"sampler {spec.name!r} needs a number of steps")
    if spec.grid in SPACINGS:
        return spaced_chain(diffusion, steps, spacing or spec.grid)
    grid = distilled_timesteps(diffusion.num_steps, steps) if timesteps is None else [int(t) for t in timesteps]
    if len(grid) != steps or grid != sorted(set(grid)) or grid[0] < 0 or grid[-1] >= diffusion.num_steps:
        raise GescoInputError(
            f"timesteps must be {steps} strictly increasing indices in [0, {diffusion.num_steps}), got {grid}"
        )
    return diffusion.respaced(grid)


def stop_after_passes(grid: GaussianDiffusion, stop_after: int | None) -> GaussianDiffusion:
    """``grid`` ending after its first ``stop_after`` network passes (``None``: all of them).

    Keeps the ``stop_after`` noisiest points of ``grid`` (:meth:`GaussianDiffusion.respaced` on
    the grid itself: the same time indices and ``abar``). Every sampler returns its clean
    estimate ``x0_hat`` at the last point of its grid, so on the shortened grid it returns the
    clean estimate of pass ``stop_after`` of the full one, with the same draws before it: an
    *early-stop ending* (docs/grain.md). ``stop_after = grid.num_steps`` is the full grid.

    Raises:
        GescoInputError: ``stop_after`` not an int in ``[1, grid.num_steps]``.
    """
    if stop_after is None:
        return grid
    n = grid.num_steps
    if isinstance(stop_after, bool) or not isinstance(stop_after, int) or not 1 <= stop_after <= n:
        raise GescoInputError(f"stop_after must be an int in [1, {n}] (network passes of a {n}-step grid), "
                              f"got {stop_after!r}")
    return grid if stop_after == n else grid.respaced(list(range(n - stop_after, n)))


# ---------------------------------------------------------------------------- entry point
def sample(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape: tuple[int, ...],
    *,
    sampler: str,
    steps: int | None,
    generator: Generators = None,
    device: torch.device | str = "cpu",
    eta: float = 0.0,
    spacing: str | None = None,
    x_T: torch.Tensor | None = None,
    clip: bool = True,
    progress: Progress | None = None,
    parametrisation: str = "v",
    timesteps: Sequence[int] | None = None,
    ode_tail: int = 0,
    stop_after: int | None = None,
    mean_temperature: float = DEFAULT_MEAN_TEMPERATURE,
) -> torch.Tensor:
    """Draw ``shape`` images with the sampler named ``sampler`` (an entry of :data:`REGISTRY`).

    ``x_T`` (or fresh noise from ``generator``, its mean scaled by ``mean_temperature``:
    :func:`scale_start_mean`), the grid (:func:`make_grid`) and the noise source
    (:func:`noise_source`) are made here; the sampler's function does the rest.

    Args:
        denoiser: see :mod:`gesco.diffusion.guidance`.
        diffusion: the full (length ``T``) chain.
        shape: ``(B, C, H, W)``.
        sampler: a name of :data:`~gesco.sampler_specs.KNOWN_SAMPLERS`: ``"ancestral"`` (all
            ``T`` steps, the paper's; ``steps`` must be ``None`` or ``T``), ``"respaced"``,
            ``"ddim"``, ``"dpmpp-2m"``, ``"dpmpp-2m-sde"``, ``"dpmpp-2m-sde-ode-mean"``;
            ``"distilled"`` (the denoiser is a distilled student, read in ``parametrisation``).
        steps: network evaluations (``1..T``).
        spacing: time steps of the few-step samplers (:func:`spaced_chain`); ``None``: the
            spec's grid (``"uniform"`` for ``"respaced"``, ``"logsnr"`` for the others).
        eta, parametrisation, ode_tail: options of the samplers whose spec lists them (DDIM;
            ``"distilled"``; both SDE solvers); the others ignore them.
        stop_after: return the clean estimate after this many network passes instead of
            finishing the grid (:func:`stop_after_passes`; every sampler; ``None``: finish).
        timesteps: a distilled student's grid as its card records it (default
            :func:`distilled_timesteps`); only ``"distilled"`` reads it.
        generator, device: source of every random draw (one generator, or one per image:
            :data:`Generators`) and where ``x`` and ``t`` live.
        x_T: optional start ``shape``; noise from ``generator`` if omitted.
        clip: clamp ``x0_hat`` to ``[-1, 1]``.
        progress: ``progress(done, total)`` after each network evaluation.
        mean_temperature: ``tau`` of :func:`scale_start_mean`, applied to ``x_T`` (given or
            drawn) before the first step; 1 (default) leaves it unchanged.
    Returns:
        ``shape`` float32 images on ``device``.
    Raises:
        GescoInputError: unknown sampler or spacing, bad ``steps``, ``eta``, ``ode_tail``,
            ``stop_after``, ``timesteps``, ``parametrisation``, ``x_T`` or ``mean_temperature``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise GescoInputError(f"shape must be (B, C, ...) with positive sizes, got {shape}")
    entry = REGISTRY.get(sampler) if isinstance(sampler, str) else None
    if entry is None:
        raise GescoInputError(f"unknown sampler {sampler!r}; known: {', '.join(KNOWN_SAMPLERS)}")
    options = {k: v for k, v in (("eta", eta), ("parametrisation", parametrisation), ("ode_tail", ode_tail))
               if k in entry.spec.options}
    tau = check_mean_temperature(mean_temperature)
    grid = stop_after_passes(make_grid(diffusion, entry.spec, steps, spacing, timesteps), stop_after)
    x = _initial(shape, x_T, generator, device)
    if len(shape) == 4:
        x = scale_start_mean(x, tau)
    elif tau != 1.0:
        raise GescoInputError(f"a mean temperature other than 1 needs (B, C, H, W) images, got shape {shape}")
    return entry.function(denoiser, x, grid, noise=noise_source(generator, device), clip=clip, progress=progress,
                          **options)
