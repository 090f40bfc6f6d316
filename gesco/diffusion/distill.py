"""Guided progressive distillation: the closed forms (the training loop is :mod:`gesco.train.distill`).

Progressive distillation (Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of
Diffusion Models", Algorithm 2) with classifier-free guidance folded into the student (Meng
et al. 2023, "On Distillation of Guided Diffusion Models", at one fixed scale ``s``).

Notation: ``alpha_t = sqrt(abar_t)``, ``sigma_t = sqrt(1 - abar_t)``, ``z_t = alpha_t x + sigma_t
eps``. A chain of ``N`` steps has positions ``p = 0..N``: position ``p >= 1`` is the original
time index ``t_p`` of :func:`gesco.diffusion.samplers.distilled_timesteps`, position 0 is the
clean image (``alpha = 1``, ``sigma = 0``). The grid of ``N / 2`` steps is every other
position of the grid of ``N`` steps (:meth:`DistillGrid.coarser`).

DDIM step (``eta = 0``) from ``t`` to ``s`` given a clean estimate ``x``::

    z_s = alpha_s x + (sigma_s / sigma_t) (z_t - alpha_t x)                     (:func:`ddim_step`)

Target of a student step from position ``p`` (``t``) to ``p - 2`` (``t''``) of the teacher's
grid: two teacher steps ``z_t -> z_t' -> z_t''`` and the ``x~`` whose single DDIM step from
``z_t`` lands on ``z_t''``::

    x~ = (z_t'' - (sigma_t'' / sigma_t) z_t) / (alpha_t'' - (sigma_t'' / sigma_t) alpha_t)   (:func:`two_step_target`)

(``x~ = z_t''`` when ``t''`` is the clean end). Loss (:func:`distillation_loss`):
``max(SNR_t, 1) ||x~ - x_hat(z_t)||^2`` with ``SNR_t = alpha_t^2 / sigma_t^2`` (Salimans &
Ho's "truncated SNR" weighting), mean over pixels.

Teachers and students are read through :func:`x0_predictor`: the original checkpoint is an
``eps`` model sampled with guidance ``eps_0 + s (eps_y - eps_0)`` (two passes); a student is a
``v`` model (``x_hat = alpha z - sigma v``) called once with the condition. Guidance is
affine in the output, so the same :func:`gesco.diffusion.guidance.guided_denoiser` serves both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gesco.diffusion.gaussian import GaussianDiffusion
from gesco.diffusion.guidance import guided_denoiser
from gesco.diffusion.samplers import PARAMETRISATIONS, distilled_timesteps, prediction_to_x0
from gesco.errors import GescoInputError

#: ``x0_fn(z, t, alpha, sigma) -> x_hat``: a model's clean estimate at original time ``t`` (``(B,)``
#: long), ``alpha`` / ``sigma`` ``(B, 1, 1, 1)`` float32
X0Predictor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

LOSS_WEIGHTINGS = ("truncated-snr", "snr", "uniform")


@dataclass(frozen=True)
class DistillGrid:
    """The time grid of a chain of ``N`` steps.

    Attributes:
        timesteps: ``(N,)`` long original time indices of positions ``1..N`` (ascending).
        alpha, sigma: ``(N + 1,)`` float64; index 0 is the clean end (1, 0).
    """

    timesteps: torch.Tensor
    alpha: torch.Tensor
    sigma: torch.Tensor

    @classmethod
    def build(cls, diffusion: GaussianDiffusion, steps: int) -> DistillGrid:
        """The grid of ``steps`` steps over ``diffusion`` (the full chain)."""
        idx = torch.tensor(distilled_timesteps(diffusion.num_steps, steps), dtype=torch.long)
        abar = diffusion.alphas_cumprod[idx].double()
        one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
        return cls(diffusion.timesteps[idx].clone(), torch.cat([one, abar.sqrt()]), torch.cat([zero, (1 - abar).sqrt()]))

    @property
    def steps(self) -> int:
        return int(self.timesteps.shape[0])

    def coarser(self) -> DistillGrid:
        """The grid of ``N / 2`` steps: positions ``0, 2, 4, ..., N`` of this one."""
        if self.steps % 2:
            raise GescoInputError(f"cannot halve a chain of {self.steps} steps")
        return DistillGrid(self.timesteps[1::2].clone(), self.alpha[0::2].clone(), self.sigma[0::2].clone())

    def time(self, pos: torch.Tensor) -> torch.Tensor:
        """Original time indices of positions ``pos >= 1`` (``(B,)`` long, on ``pos``'s device)."""
        if bool((pos < 1).any()):
            raise GescoInputError("position 0 is the clean end; it has no time index")
        return self.timesteps.to(pos.device)[pos - 1]

    def coeffs(self, pos: torch.Tensor, ndim: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
        """``alpha``, ``sigma`` of positions ``pos`` as float32 ``(B, 1, ..., 1)`` (``ndim`` dims)."""
        shape = (-1,) + (1,) * (ndim - 1)
        a = self.alpha.to(pos.device)[pos].float().view(shape)
        s = self.sigma.to(pos.device)[pos].float().view(shape)
        return a, s


def ddim_step(z: torch.Tensor, x0: torch.Tensor, alpha_t, sigma_t, alpha_s, sigma_s) -> torch.Tensor:
    """Deterministic DDIM from ``t`` to ``s``: ``alpha_s x0 + (sigma_s / sigma_t) (z - alpha_t x0)``."""
    return alpha_s * x0 + (sigma_s / sigma_t) * (z - alpha_t * x0)


def x0_predictor(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    parametrisation: str = "eps",
    guidance_scale: float = 1.0,
    image_channels: int = 3,
    clip: bool = True,
) -> X0Predictor:
    """A model's clean estimate under guidance scale ``guidance_scale`` (1: one plain pass).

    Args:
        model: ``(x, t, y) -> (B, C or 2C, H, W)``; its first ``C`` channels are read in
            ``parametrisation`` (:func:`gesco.diffusion.samplers.prediction_to_x0`).
        y: ``(B, L, H, W)`` conditioning.
        clip: clamp the estimate to ``[-1, 1]`` (as the samplers do).
    """
    if parametrisation not in PARAMETRISATIONS:
        raise GescoInputError(f"unknown parametrisation {parametrisation!r}; known: {', '.join(PARAMETRISATIONS)}")
    den = guided_denoiser(model, y, guidance_scale, image_channels)

    def x0_fn(z: torch.Tensor, t: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        pred, _ = den(z, t)
        x0 = prediction_to_x0(pred.float(), z, alpha, sigma, parametrisation)
        return x0.clamp(-1.0, 1.0) if clip else x0

    return x0_fn


def two_step_target(teacher: X0Predictor, z: torch.Tensor, pos: torch.Tensor, grid: DistillGrid) -> torch.Tensor:
    """Salimans & Ho's target ``x~`` for a student step from teacher position ``pos`` to ``pos - 2``.

    Args:
        teacher: the teacher's clean estimate (:func:`x0_predictor`).
        z: ``(B, C, H, W)`` ``z_t`` at teacher positions ``pos``.
        pos: ``(B,)`` long positions in the *teacher's* grid, each ``>= 2`` (even for a
            halving round: the student's positions ``pos / 2``).
        grid: the teacher's grid.
    Returns:
        ``(B, C, H, W)`` float32 ``x~`` (call it under ``torch.no_grad()``: the target is a constant).
    """
    if bool((pos < 2).any()) or bool((pos > grid.steps).any()):
        raise GescoInputError(f"teacher positions must be in [2, {grid.steps}]")
    n = z.dim()
    a1, s1 = grid.coeffs(pos, n)
    a2, s2 = grid.coeffs(pos - 1, n)
    a3, s3 = grid.coeffs(pos - 2, n)
    x1 = teacher(z, grid.time(pos), a1, s1)
    z2 = ddim_step(z, x1, a1, s1, a2, s2)
    x2 = teacher(z2, grid.time(pos - 1), a2, s2)
    z3 = ddim_step(z2, x2, a2, s2, a3, s3)
    # the ratio and the denominator in float64: alpha'' - (sigma''/sigma) alpha is small near t = T
    a1d, s1d = grid.alpha.to(pos.device)[pos], grid.sigma.to(pos.device)[pos]
    a3d, s3d = grid.alpha.to(pos.device)[pos - 2], grid.sigma.to(pos.device)[pos - 2]
    ratio = s3d / s1d
    shape = (-1,) + (1,) * (n - 1)
    inv_den = (1.0 / (a3d - ratio * a1d)).float().view(shape)
    return (z3 - ratio.float().view(shape) * z) * inv_den


def loss_weight(alpha: torch.Tensor, sigma: torch.Tensor, weighting: str = "truncated-snr") -> torch.Tensor:
    """Per-sample weight of the x-space MSE: ``max(SNR, 1)`` (truncated SNR), ``SNR`` or 1."""
    if weighting not in LOSS_WEIGHTINGS:
        raise GescoInputError(f"unknown loss weighting {weighting!r}; known: {', '.join(LOSS_WEIGHTINGS)}")
    snr = (alpha.flatten() ** 2) / (sigma.flatten() ** 2)
    if weighting == "truncated-snr":
        return snr.clamp(min=1.0)
    if weighting == "snr":
        return snr
    return torch.ones_like(snr)


def distillation_loss(
    student_out: torch.Tensor,
    z: torch.Tensor,
    alpha: torch.Tensor,
    sigma: torch.Tensor,
    target: torch.Tensor,
    parametrisation: str = "v",
    weighting: str = "truncated-snr",
) -> dict[str, torch.Tensor]:
    """``weight(t) * mean((x_hat - x~)^2)`` per sample, ``x_hat`` the student's clean estimate.

    Args:
        student_out: the student's raw output ``(B, C or 2C, H, W)``; its first ``C = z``'s
            channels are read in ``parametrisation`` (the rest, the learned-variance channels
            it inherits from the teacher, are unused and untrained).
        z, alpha, sigma: ``z_t`` and its coefficients ``(B, 1, 1, 1)``.
        target: ``x~`` (:func:`two_step_target`), or the teacher's clean estimate in the
            guidance round.
    Returns:
        dict of ``(B,)`` tensors: ``loss`` (weighted), ``mse_x0`` (unweighted).
    """
    c = z.shape[1]
    x0 = prediction_to_x0(student_out[:, :c].float(), z, alpha, sigma, parametrisation)
    mse = ((x0 - target) ** 2).mean(dim=tuple(range(1, x0.dim())))
    return {"loss": loss_weight(alpha, sigma, weighting) * mse, "mse_x0": mse}
