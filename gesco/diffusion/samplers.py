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

Samplers (all noise comes from the ``torch.Generator`` given; same seed, same images):

* :func:`sample_ancestral`: the paper's ancestral sampler (DDPM, Ho et al. 2020; paper
  Eq. 5-7), ``x_{t-1} = mu_theta(x_t, t) + exp(logvar / 2) z``, over every step of the chain
  it is given: 1000 steps for the full chain (the paper's setting); with
  ``diffusion.respaced(n)`` it is the respaced sampler of Nichol & Dhariwal (2021).
* :func:`sample_ddim`: DDIM (Song, Meng & Ermon 2021, Eq. 12), deterministic for ``eta = 0``.
* :func:`sample_dpmpp_2m`: DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2),
  the second-order multistep ODE solver in the data-prediction form.
* :func:`sample_dpmpp_2m_sde`: SDE-DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", its
  solver for the reverse diffusion SDE), the same multistep scheme with noise: it injects fresh noise at
  every step, like the ancestral sampler, so errors of the network at one step are partly
  washed out by the next (Karras et al. 2022, section 4) instead of being carried to the end.
  As ``"dpmpp-2m-sde-ode-mean"`` (``ode_mean=True``) the image's per-channel mean takes the
  deterministic step instead (fewer colour errors at few steps).
* :func:`sample_distilled`: deterministic DDIM over the chain of a *distilled* student
  (:mod:`gesco.diffusion.distill`, progressive distillation with guidance folded in): one
  unguided forward per step; the student's output is read in its parametrisation (``"v"``
  by default), not as ``eps``. Registered as ``"distilled"`` in :data:`DISTILLED_SAMPLERS`.
* :func:`sample`: one entry point by name; :func:`network_evaluations`: the cost of a call.

Time steps of the few-step samplers (:func:`spaced_chain`): ``steps`` original indices from
``T - 1`` down to ``0``, both ends included (``steps = 1``: ``T - 1`` only), evenly spaced in
time for the respaced ancestral sampler (improved DDPM) and in log-SNR for DDIM and
both DPM-Solver++ variants by default. The last network evaluation is at ``t = 0`` (``sigma_0 = 0.01``
for the linear schedule) and the sampler returns its clean estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from gesco.defaults import DEFAULT_SAMPLER, DEFAULT_STEPS, GUIDED_SAMPLER, GUIDED_STEPS, SAMPLERS  # noqa: F401 - re-exported
from gesco.diffusion.gaussian import GaussianDiffusion
from gesco.diffusion.guidance import Denoiser
from gesco.errors import GescoInputError

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after each network evaluation of a sampler."""


#: Samplers of distilled checkpoints (``gesco train distill``): they run a student whose card
#: records ``{"distilled": {"steps", "guidance_scale", "parametrisation", ...}}``, at exactly its
#: step count, one unguided forward per step. Kept apart from :data:`SAMPLERS` (the samplers of
#: an ordinary epsilon-predicting checkpoint, which a distilled checkpoint refuses).
DISTILLED_SAMPLER = "distilled"
DISTILLED_SAMPLERS: tuple[str, ...] = (DISTILLED_SAMPLER,)
#: every sampler name :func:`sample` and :func:`network_evaluations` accept
KNOWN_SAMPLERS: tuple[str, ...] = SAMPLERS + DISTILLED_SAMPLERS
#: how a distilled student's first ``C`` output channels are read (:func:`prediction_to_x0`)
PARAMETRISATIONS: tuple[str, ...] = ("v", "x0", "eps")
#: The samplers of a *guidance-only* student (``gesco train distill`` with ``parametrisation:
#: eps, rounds: 0``; its card lists them under ``"distilled"."samplers"``): it predicts the guided
#: epsilon at every ``t`` in one pass, so the samplers that read only epsilon run it at any step
#: count. The ancestral and respaced samplers also read the learned variance, which the
#: distillation does not train, and are left out.
GUIDANCE_ONLY_SAMPLERS: tuple[str, ...] = ("ddim", "dpmpp-2m", "dpmpp-2m-sde", "dpmpp-2m-sde-ode-mean")


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


def _initial(shape, x_T, generator, device) -> torch.Tensor:
    """``x_T``: the given start (float32 on ``device``) or fresh noise ``N(0, I)``."""
    if x_T is None:
        return _noise(tuple(shape), generator, device)
    if tuple(x_T.shape) != tuple(shape):
        raise GescoInputError(f"x_T has shape {tuple(x_T.shape)}, expected {tuple(shape)}")
    return x_T.to(device=device, dtype=torch.float32)


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
def sample_ancestral(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape: tuple[int, ...],
    *,
    generator: Generators = None,
    device: torch.device | str = "cpu",
    x_T: torch.Tensor | None = None,
    clip: bool = True,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Ancestral sampling over every step of ``diffusion`` (paper Eq. 5-7).

    For ``i = S-1, ..., 0`` (``S = diffusion.num_steps``)::

        eps, v   = denoiser(x_i, diffusion.timesteps[i])
        x0_hat   = (x_i - sqrt(1 - abar_i) eps) / sqrt(abar_i)        (clamped if clip)
        mean     = c0_i x0_hat + ct_i x_i                             (posterior mean, Eq. 6)
        logvar   = f log beta_i + (1 - f) log beta_tilde_i, f = (v+1)/2   (Eq. 7; beta_tilde if v is None)
        x_{i-1}  = mean + exp(logvar / 2) z,  z ~ N(0, I)             (no noise at i = 0)

    With the full chain (``S = T = 1000``) this is the paper's sampler. With
    ``diffusion.respaced(n)`` it is the respaced sampler of Nichol & Dhariwal (2021): the
    denoiser still sees original indices, the coefficients come from the respaced betas
    ``beta'_i = 1 - abar_{t_i} / abar_{t_{i-1}}``, and the learned variance interpolates
    between the respaced ``beta'_i`` and ``beta_tilde'_i`` (as in improved DDPM).

    Args:
        denoiser: ``(x (B,C,H,W) float32, t (B,) long) -> (eps, v or None)``, each ``(B,C,H,W)``.
        diffusion: the chain to run (full or respaced).
        shape: ``(B, C, H, W)`` of the images.
        generator: source of every random draw (``x_T`` and the ``z``): one generator, or one
            per image (:data:`Generators`).
        device: where ``x`` and ``t`` live.
        x_T: optional start ``shape``; noise from ``generator`` if omitted.
        clip: clamp ``x0_hat`` to ``[-1, 1]``.
        progress: ``progress(done, total)`` after each step.
    Returns:
        ``shape`` float32 samples on ``device`` (in ``[-1, 1]`` when ``clip``).
    """
    x = _initial(shape, x_T, generator, device)
    n = diffusion.num_steps
    for k, i in enumerate(reversed(range(n))):
        eps, v = denoiser(x, _times(diffusion.timesteps[i], x.shape[0], device))
        mean, logvar, _ = diffusion.p_mean_variance(eps, v, x, _times(i, x.shape[0], device), clip=clip)
        if i > 0:
            x = mean + torch.exp(0.5 * logvar) * _noise(x.shape, generator, device)
        else:
            x = mean  # last step: no noise (mean = x0_hat, since c0_0 = 1 and ct_0 = 0)
        if progress is not None:
            progress(k + 1, n)
    return x


# ---------------------------------------------------------------------------- DDIM
@torch.no_grad()
def sample_ddim(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape: tuple[int, ...],
    *,
    steps: int,
    eta: float = 0.0,
    spacing: str = "logsnr",
    generator: Generators = None,
    device: torch.device | str = "cpu",
    x_T: torch.Tensor | None = None,
    clip: bool = True,
    progress: Progress | None = None,
) -> torch.Tensor:
    """DDIM (Song et al. 2021, Eq. 12) on the ``steps`` steps of :func:`spaced_chain`.

    With ``a = abar_{t_i}``, ``a' = abar_{t_{i-1}}`` (``a' = 1`` after the last step)::

        x0_hat    = (x - sqrt(1 - a) eps) / sqrt(a)          (clamped if clip)
        eps_hat   = (x - sqrt(a) x0_hat) / sqrt(1 - a)        (eps consistent with the clamped x0)
        sigma     = eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a')
        x_{i-1}   = sqrt(a') x0_hat + sqrt(1 - a' - sigma^2) eps_hat + sigma z

    ``eta = 0`` is the deterministic DDIM ODE sampler; ``eta = 1`` has the variance of
    DDPM's ``beta_tilde``. The learned variance ``v`` is not used.

    Args:
        steps: number of network evaluations, ``1 <= steps <= diffusion.num_steps``.
        eta: noise scale (>= 0).
        spacing: ``"logsnr"`` or ``"uniform"`` (:func:`spaced_chain`).
        Other arguments as :func:`sample_ancestral`.
    Returns:
        ``shape`` float32 samples on ``device``.
    """
    if eta < 0:
        raise GescoInputError(f"eta must be >= 0, got {eta}")
    chain = spaced_chain(diffusion, steps, spacing)
    abar = chain.alphas_cumprod.tolist()
    x = _initial(shape, x_T, generator, device)
    for k, i in enumerate(reversed(range(chain.num_steps))):
        a, a_prev = abar[i], (abar[i - 1] if i > 0 else 1.0)
        eps, _ = denoiser(x, _times(chain.timesteps[i], x.shape[0], device))
        x0 = _x0_from_eps(x, eps, a, clip)
        eps = (x - math.sqrt(a) * x0) / math.sqrt(1.0 - a)
        sigma = eta * math.sqrt((1.0 - a_prev) / (1.0 - a)) * math.sqrt(1.0 - a / a_prev)
        x = math.sqrt(a_prev) * x0 + math.sqrt(max(1.0 - a_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * _noise(x.shape, generator, device)
        if progress is not None:
            progress(k + 1, chain.num_steps)
    return x


# ---------------------------------------------------------------------------- DPM-Solver++(2M)
@torch.no_grad()
def sample_dpmpp_2m(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape: tuple[int, ...],
    *,
    steps: int,
    spacing: str = "logsnr",
    generator: Generators = None,
    device: torch.device | str = "cpu",
    x_T: torch.Tensor | None = None,
    clip: bool = True,
    progress: Progress | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), data prediction, ``steps`` evaluations.

    Times ``t_0 > t_1 > ... > t_{N-1}``: the steps of :func:`spaced_chain` (log-SNR uniform
    by default), from ``T - 1`` down to ``0``. With ``alpha = sqrt(abar)``,
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
        steps: number of network evaluations, ``1 <= steps <= diffusion.num_steps``.
        spacing: ``"logsnr"`` or ``"uniform"`` (:func:`spaced_chain`).
        Other arguments as :func:`sample_ancestral`.
    Returns:
        ``shape`` float32 samples on ``device``.
    """
    return _multistep_2m(denoiser, diffusion, shape, _ode_2m_update, steps=steps, spacing=spacing,
                         generator=generator, device=device, x_T=x_T, clip=clip, progress=progress)


def _ode_2m_update(x, d, d_prev, i, alpha, sigma, lam):
    """One DPM-Solver++(2M) step ``x_{t_i} -> x_{t_{i+1}}`` (see :func:`sample_dpmpp_2m`)."""
    h = lam[i + 1] - lam[i]
    if d_prev is None:
        d_eff = d
    else:
        r = (lam[i] - lam[i - 1]) / h
        d_eff = (1.0 + 1.0 / (2.0 * r)) * d - (1.0 / (2.0 * r)) * d_prev
    return (sigma[i + 1] / sigma[i]) * x - alpha[i + 1] * math.expm1(-h) * d_eff


def _sde_2m_update(x, d, d_prev, i, alpha, sigma, lam, noise):
    """One SDE-DPM-Solver++(2M) step with the fresh noise ``noise`` (see :func:`sample_dpmpp_2m_sde`)."""
    h = lam[i + 1] - lam[i]
    keep = -math.expm1(-2.0 * h)  # 1 - exp(-2h)
    x = (sigma[i + 1] / sigma[i]) * math.exp(-h) * x + alpha[i + 1] * keep * d
    if d_prev is not None:
        r = (lam[i] - lam[i - 1]) / h
        x = x + alpha[i + 1] * keep / (2.0 * r) * (d - d_prev)
    return x + sigma[i + 1] * math.sqrt(keep) * noise


def sample_dpmpp_2m_sde(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    shape: tuple[int, ...],
    *,
    steps: int,
    spacing: str = "logsnr",
    generator: Generators = None,
    device: torch.device | str = "cpu",
    x_T: torch.Tensor | None = None,
    clip: bool = True,
    progress: Progress | None = None,
    ode_mean: bool = False,
    ode_tail: int = 0,
) -> torch.Tensor:
    """SDE-DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", the SDE solver), ``steps`` evaluations.

    The stochastic counterpart of :func:`sample_dpmpp_2m`, in the same notation (times of
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
    :func:`sample_dpmpp_2m` instead, and the noise is projected off it; every other direction
    keeps the step above. DDIM's posterior family allows a separate ``eta`` per orthonormal
    direction with the same marginals (Song et al. 2021, Eq. 7, applied per direction), so this
    is, at first order, ``eta = 0`` on the image mean and ``eta = 1`` elsewhere. Why: the U-Net sees its input's
    mean colour only through the mean path (docs/evaluation/colour/README.md), and with few
    steps each step's fresh noise moves the mean colour by a random amount that the next
    few clean estimates no longer correct (docs/distillation.md, "Colour at 8 steps").

    Args:
        steps: number of network evaluations, ``1 <= steps <= diffusion.num_steps``.
        spacing: ``"logsnr"`` or ``"uniform"`` (:func:`spaced_chain`).
        ode_mean: the image mean follows the ODE (see above).
        ode_tail: the last ``ode_tail`` of the ``steps - 1`` updates take the deterministic
            DPM-Solver++(2M) step (no fresh noise): a sampler *ending* that stops injecting
            noise near the clean end (Karras et al. 2022 limit the stochasticity to a range of
            noise levels the same way). 0 (default): every update is stochastic. Measured in
            ``bench/bench_sampler_ending.py`` (grain against mIoU).
        Other arguments as :func:`sample_ancestral` (``generator`` draws ``x_T`` and the ``z_i``).
    Returns:
        ``shape`` float32 samples on ``device``.
    """
    if isinstance(ode_tail, bool) or not isinstance(ode_tail, int) or not 0 <= ode_tail < max(steps, 1):
        raise GescoInputError(f"ode_tail must be an int in [0, {max(steps - 1, 0)}], got {ode_tail!r}")

    def update(x, d, d_prev, i, alpha, sigma, lam):
        if i >= len(alpha) - 1 - ode_tail:  # the deterministic ending: no noise drawn
            return _ode_2m_update(x, d, d_prev, i, alpha, sigma, lam)
        nxt = _sde_2m_update(x, d, d_prev, i, alpha, sigma, lam, _noise(tuple(x.shape), generator, device))
        if not ode_mean:
            return nxt
        dims = tuple(range(2, x.dim()))  # the per-channel image mean: deterministic, the ODE's step
        ode = _ode_2m_update(x.mean(dim=dims, keepdim=True), d.mean(dim=dims, keepdim=True),
                             None if d_prev is None else d_prev.mean(dim=dims, keepdim=True), i, alpha, sigma, lam)
        return nxt - nxt.mean(dim=dims, keepdim=True) + ode

    return _multistep_2m(denoiser, diffusion, shape, update, steps=steps, spacing=spacing, generator=generator,
                         device=device, x_T=x_T, clip=clip, progress=progress)


def _multistep_2m(denoiser, diffusion, shape, update, *, steps, spacing, generator, device, x_T, clip, progress):
    """The loop both DPM-Solver++(2M) variants share: time steps of :func:`spaced_chain` in
    descending order, one network evaluation and clean estimate ``D_i`` per step, then
    ``x = update(x, D_i, D_{i-1}, i, alpha, sigma, lambda)``; the last step returns ``D``."""
    chain = spaced_chain(diffusion, steps, spacing)
    abar = list(reversed(chain.alphas_cumprod.tolist()))  # index 0: the noisiest step
    times = list(reversed(chain.timesteps.tolist()))
    alpha = [math.sqrt(a) for a in abar]
    sigma = [math.sqrt(1.0 - a) for a in abar]
    lam = [math.log(al / si) for al, si in zip(alpha, sigma)]

    x = _initial(shape, x_T, generator, device)
    d_prev: torch.Tensor | None = None
    for i, t in enumerate(times):
        eps, _ = denoiser(x, _times(t, x.shape[0], device))
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
def sample_distilled(
    student: Denoiser,
    diffusion: GaussianDiffusion,
    shape: tuple[int, ...],
    *,
    steps: int,
    parametrisation: str = "v",
    timesteps: list[int] | None = None,
    generator: Generators = None,
    device: torch.device | str = "cpu",
    x_T: torch.Tensor | None = None,
    clip: bool = True,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Deterministic DDIM over a distilled student's chain (one network evaluation per step).

    Positions ``p = steps, ..., 1`` of :func:`distilled_timesteps` (or ``timesteps``, as the
    student's card records them), with ``a = abar_{t_p}`` and ``a' = abar_{t_{p-1}}``
    (``a' = 1`` at ``p = 1``)::

        pred, _   = student(x, t_p)                  (first C output channels; no guidance pass)
        x0_hat    = prediction_to_x0(pred, x, sqrt(a), sqrt(1 - a), parametrisation)   (clamped if clip)
        eps_hat   = (x - sqrt(a) x0_hat) / sqrt(1 - a)
        x         = sqrt(a') x0_hat + sqrt(1 - a') eps_hat

    so the last step returns ``x0_hat``. This is :func:`sample_ddim` with ``eta = 0`` on the
    student's own grid (which has no evaluation at ``t = 0``), with the output read in the
    student's parametrisation.

    Args:
        student: ``(x, t) -> (pred, anything)``, e.g. ``guided_denoiser(model, y, 1.0)``: the
            guidance is folded into the student, so it is called once per step with the condition.
        diffusion: the full chain (``timesteps`` index it).
        steps: the student's step count (network evaluations).
        parametrisation: ``"v"``, ``"x0"`` or ``"eps"`` (:func:`prediction_to_x0`).
        timesteps: ascending indices of the chain (``steps`` of them); default
            :func:`distilled_timesteps`.
        Other arguments as :func:`sample_ancestral` (``generator`` only draws ``x_T``).
    Returns:
        ``shape`` float32 samples on ``device``.
    """
    grid = distilled_timesteps(diffusion.num_steps, steps) if timesteps is None else [int(t) for t in timesteps]
    if len(grid) != steps or grid != sorted(set(grid)) or grid[0] < 0 or grid[-1] >= diffusion.num_steps:
        raise GescoInputError(
            f"timesteps must be {steps} strictly increasing indices in [0, {diffusion.num_steps}), got {grid}"
        )
    if parametrisation not in PARAMETRISATIONS:
        raise GescoInputError(f"unknown parametrisation {parametrisation!r}; known: {', '.join(PARAMETRISATIONS)}")
    abar = [float(diffusion.alphas_cumprod[t]) for t in grid]
    x = _initial(shape, x_T, generator, device)
    for k, p in enumerate(reversed(range(steps))):
        a, a_prev = abar[p], (abar[p - 1] if p > 0 else 1.0)
        pred, _ = student(x, _times(diffusion.timesteps[grid[p]], x.shape[0], device))
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
) -> torch.Tensor:
    """Draw ``shape`` images with the sampler named ``sampler``.

    Args:
        denoiser: see :mod:`gesco.diffusion.guidance`.
        diffusion: the full (length ``T``) chain.
        shape: ``(B, C, H, W)``.
        sampler: ``"ancestral"`` (all ``T`` steps, the paper's; ``steps`` must be ``None`` or
            ``T``), ``"respaced"`` (ancestral on ``diffusion.respaced(steps)``), ``"ddim"``
            (``eta`` applies), ``"dpmpp-2m"``, ``"dpmpp-2m-sde"`` or ``"dpmpp-2m-sde-ode-mean"``;
            ``"distilled"`` (:func:`sample_distilled`: the
            denoiser is a distilled student, read in ``parametrisation``, on its default grid).
        steps: network evaluations (``1..T``).
        spacing: time steps of the few-step samplers (:func:`spaced_chain`); ``None`` picks
            ``"uniform"`` for ``"respaced"`` and ``"logsnr"`` for the others.
        generator, device, x_T, clip, progress: as :func:`sample_ancestral`.
    Returns:
        ``shape`` float32 images on ``device``.
    Raises:
        GescoInputError: unknown sampler or spacing, bad ``steps``, ``eta`` or ``x_T``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise GescoInputError(f"shape must be (B, C, ...) with positive sizes, got {shape}")
    common = dict(generator=generator, device=device, x_T=x_T, clip=clip, progress=progress)
    if sampler == "ancestral":
        if steps is not None and steps != diffusion.num_steps:
            raise GescoInputError(
                f"the ancestral sampler runs all {diffusion.num_steps} steps, got steps={steps}; "
                "use sampler='respaced' for fewer"
            )
        return sample_ancestral(denoiser, diffusion, shape, **common)
    if steps is None:
        raise GescoInputError(f"sampler {sampler!r} needs a number of steps")
    if sampler == "respaced":
        chain = spaced_chain(diffusion, steps, spacing or "uniform")
        return sample_ancestral(denoiser, chain, shape, **common)
    if sampler == "ddim":
        return sample_ddim(denoiser, diffusion, shape, steps=steps, eta=eta, spacing=spacing or "logsnr", **common)
    if sampler == "dpmpp-2m":
        return sample_dpmpp_2m(denoiser, diffusion, shape, steps=steps, spacing=spacing or "logsnr", **common)
    if sampler in ("dpmpp-2m-sde", "dpmpp-2m-sde-ode-mean"):
        return sample_dpmpp_2m_sde(denoiser, diffusion, shape, steps=steps, spacing=spacing or "logsnr",
                                   ode_mean=sampler == "dpmpp-2m-sde-ode-mean", **common)
    if sampler == DISTILLED_SAMPLER:
        return sample_distilled(denoiser, diffusion, shape, steps=steps, parametrisation=parametrisation, **common)
    raise GescoInputError(f"unknown sampler {sampler!r}; known: {', '.join(KNOWN_SAMPLERS)}")


class NetworkEvaluations(NamedTuple):
    """Cost of one :func:`sample` call.

    Attributes:
        forwards: network forward calls (a guided step is one batched call of size ``2B``).
        batch_factor: images per sample in each forward (2 with guidance, else 1; always 1
            for ``"distilled"``, whose guidance is folded into the student).
    """

    forwards: int
    batch_factor: int

    @property
    def passes(self) -> int:
        """Per-image network passes: ``forwards * batch_factor`` (the paper's "two passes per step")."""
        return self.forwards * self.batch_factor


def network_evaluations(sampler: str, steps: int | None, guided: bool, num_timesteps: int = 1000) -> NetworkEvaluations:
    """How many network forwards :func:`sample` makes (one per step for every sampler here).

    Args:
        sampler: a name of :data:`KNOWN_SAMPLERS`.
        steps: as for :func:`sample` (ignored by ``"ancestral"``, which runs ``num_timesteps``).
        guided: classifier-free guidance with a scale other than 0 and 1 (batch ``2B``).
        num_timesteps: ``T`` of the full chain.
    """
    if sampler not in KNOWN_SAMPLERS:
        raise GescoInputError(f"unknown sampler {sampler!r}; known: {', '.join(KNOWN_SAMPLERS)}")
    if sampler == "ancestral":
        n = num_timesteps
    elif steps is None or not 1 <= steps <= num_timesteps:
        raise GescoInputError(f"steps must be an int in [1, {num_timesteps}], got {steps!r}")
    else:
        n = int(steps)
    if sampler in DISTILLED_SAMPLERS:
        return NetworkEvaluations(forwards=n, batch_factor=1)
    return NetworkEvaluations(forwards=n, batch_factor=2 if guided else 1)
