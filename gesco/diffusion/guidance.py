"""Classifier-free guidance (paper Eq. 13) as a denoiser.

A *denoiser* is what every sampler calls: ``denoiser(x_t, t) -> (eps, v)`` with
``x_t`` ``(B, C, H, W)``, ``t`` ``(B,)`` long time indices of the original (length ``T``)
chain, ``eps`` ``(B, C, H, W)`` and ``v`` ``(B, C, H, W)`` or ``None`` (no learned variance).

Guidance: the null label is the all-zero map. With ``eps_y`` the conditional and
``eps_0`` the unconditional prediction,

    eps = eps_0 + s * (eps_y - eps_0)

so ``s = 1`` is the plain conditional model and ``s = 0`` the unconditional one. The
paper's Eq. (13) writes ``eps_y + s' (eps_y - eps_0)``, which is the same with
``s = s' + 1``; the authors' code uses this file's convention (scale 2 for Cityscapes,
i.e. the paper's ``s' = 1``). Only epsilon is guided; the variance ``v`` comes from the
conditional pass. The two passes run as one batched forward of size ``2B``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

DenoiserOutput = tuple[torch.Tensor, torch.Tensor | None]


class Denoiser(Protocol):
    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> DenoiserOutput: ...


def split_output(out: torch.Tensor, image_channels: int) -> DenoiserOutput:
    """Model output ``(B, C or 2C, H, W)`` -> ``(eps, v or None)``."""
    if out.shape[1] == 2 * image_channels:
        return out[:, :image_channels], out[:, image_channels:]
    return out, None


def guided_denoiser(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    guidance_scale: float,
    image_channels: int = 3,
) -> Denoiser:
    """Wrap ``model(x, t, y)`` into a classifier-free-guided denoiser for the conditioning ``y``.

    Args:
        model: the U-Net, ``(x (B,C,H,W), t (B,), y (B,L,H,W)) -> (B, C or 2C, H, W)``.
        y: ``(B, L, H, W)`` conditioning (semantic maps after FDS and padding).
        guidance_scale: ``s`` above; 1 disables guidance (one pass), 0 ignores the condition.
    """
    null = torch.zeros_like(y)

    def denoise(x: torch.Tensor, t: torch.Tensor) -> DenoiserOutput:
        if guidance_scale == 1.0:
            return split_output(model(x, t, y), image_channels)
        if guidance_scale == 0.0:
            return split_output(model(x, t, null), image_channels)
        out = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
        cond, uncond = out.chunk(2)
        eps_y, v = split_output(cond, image_channels)
        eps_0, _ = split_output(uncond, image_channels)
        return eps_0 + guidance_scale * (eps_y - eps_0), v

    return denoise
