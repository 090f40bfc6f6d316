"""Noisy semantic conditioning for training (paper section 3.2, "Receiver").

The model is trained on maps that went through the channel, so that it survives bad
channels. For a padded batch of clean conditionings ``(B, C + 1, H, W)``, each sample's
*present* maps (its classes and, when known, its edge map) are sent through the
core channel (:mod:`gesco.channel`) at a PSNR drawn from a weighted set, then
optionally filtered by FDS (:func:`gesco.semantics.fds.fds_filter`). Absent classes are
not transmitted (the mask), so they stay exact zeros, which is the receiver's Pad.
This is the same channel and FDS code the services run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gesco.channel import PAPER_PSNRS_DB, get_channel, validate_channel_params
from gesco.config_base import ConfigBase
from gesco.errors import ChannelParameterError
from gesco.semantics.fds import fds_filter


@dataclass
class NoisyMapsConfig(ConfigBase):
    """How training corrupts the conditioning.

    Attributes:
        enabled: train on noisy maps (the paper's method) or on clean maps (ablation).
        channel: channel model name (``"awgn"``: Eq. 1 with power normalisation; ``"rayleigh"``,
            ``"tdl"``, ...: :data:`gesco.channel.CHANNELS`).
        channel_params: parameters of that model (validated here; empty = its defaults).
        psnrs_db: PSNR values drawn per sample.
        weights: relative weight of each PSNR (the clean channel, 100 dB, weighted higher).
        fds: also filter the noisy maps with FDS during training.
        fds_kernel: FDS window.
    """

    enabled: bool = True
    channel: str = "awgn"
    channel_params: dict = field(default_factory=dict)
    psnrs_db: tuple[float, ...] = PAPER_PSNRS_DB
    weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0)
    fds: bool = True
    fds_kernel: int = 3

    def __post_init__(self) -> None:
        self.channel_params = validate_channel_params(self.channel, dict(self.channel_params or {}))
        self.psnrs_db = tuple(float(p) for p in self.psnrs_db)
        self.weights = tuple(float(w) for w in self.weights)
        if len(self.psnrs_db) != len(self.weights):
            raise ChannelParameterError(f"{len(self.psnrs_db)} PSNR values but {len(self.weights)} weights")
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ChannelParameterError(f"PSNR weights must be >= 0 with a positive sum, got {self.weights}")


def present_mask(cond: torch.Tensor, has_edges: torch.Tensor | bool) -> torch.Tensor:
    """``(B, C + 1)`` bool: which maps of a padded clean conditioning are transmitted.

    Class maps count when at least one pixel has the class; the edge map (last) when the
    sample has instances (``has_edges``, ``(B,)`` or a bool).
    """
    mask = cond[:, :-1].flatten(2).amax(-1) > 0
    edges = torch.as_tensor(has_edges, device=cond.device).expand(cond.shape[0]).bool()
    return torch.cat([mask, edges[:, None]], dim=1)


def corrupt_conditioning(
    cond: torch.Tensor,
    has_edges: torch.Tensor | bool,
    config: NoisyMapsConfig,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Send each sample's present maps through the channel (and FDS).

    Args:
        cond: ``(B, C + 1, H, W)`` clean padded conditioning in {0, 1}.
        has_edges: whether each sample's last map is a real edge map.
        config: the :class:`NoisyMapsConfig`.
        generator: torch generator for the PSNR draw and the noise, on ``cond``'s device
            (everything is computed there: a CUDA trainer corrupts on the GPU).
    Returns:
        ``(noisy conditioning (B, C + 1, H, W), PSNR per sample (B,) float64)``; when
        ``config.enabled`` is false the input is returned with PSNR ``inf``.
    """
    b = cond.shape[0]
    if not config.enabled:
        return cond, torch.full((b,), float("inf"), dtype=torch.float64, device=cond.device)
    w = torch.tensor(config.weights, dtype=torch.float64, device=cond.device)
    idx = torch.multinomial(w, b, replacement=True, generator=generator)
    psnr = torch.tensor(config.psnrs_db, dtype=torch.float64, device=cond.device)[idx]
    mask = present_mask(cond, has_edges)[:, :, None, None].expand_as(cond)
    out = get_channel(config.channel, **config.channel_params).transmit(cond, psnr, mask=mask, generator=generator).received
    if config.fds:
        out = fds_filter(out, config.fds_kernel)
    return out, psnr
