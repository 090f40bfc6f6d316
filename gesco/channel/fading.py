"""Rayleigh block fading over complex baseband symbols (``"rayleigh"``, ``"rayleigh-nocsi"``).

Real symbols and complex channel uses
-------------------------------------
The analog rows send real symbols (one map element = one real symbol, Eq. 1). A fading
channel acts on complex baseband symbols, so two consecutive real symbols of the flattened
sample form one complex symbol, ``c_j = z_{2j} + i z_{2j+1}`` (an odd count is padded
with one zero, which is not counted as sent). With the power normalised to ``P = 1`` per
real symbol, ``E|c|^2 = 2 P`` and the complex noise is ``CN(0, 2 sigma^2)``, i.e.
``sigma^2`` per real dimension: **Eq. (1) holds unchanged, per real symbol**,

    PSNR = 10 log10(P / sigma^2),  sigma^2 = P / 10^(PSNR / 10).

The channel is

    y_j = h_j c_j + n_j,   n_j ~ CN(0, 2 sigma^2),   h_j ~ CN(0, 1)  (|h| Rayleigh, E|h|^2 = 1),

with ``h`` constant over blocks of ``block_length`` consecutive complex symbols and
independent between blocks (``block_length = 0``: one coefficient per sample, quasi-static
fading). Because ``E|h|^2 = 1``, the PSNR is the **average received SNR** per real symbol;
the SNR of one block is ``|h|^2 10^(PSNR/10)`` (exponentially distributed).

Receivers
---------
* ``"rayleigh"`` (perfect CSI): the receiver knows every ``h_j`` and equalises,
  ``equalizer="mmse"`` (default): ``c^ = conj(h) y / (|h|^2 + sigma^2)`` (bounded in deep
  fades, biased towards 0), or ``"zf"``: ``c^ = y / h = c + n / h`` (unbiased, noise
  variance ``2 sigma^2 / |h|^2``, unbounded in deep fades).
* ``"rayleigh-nocsi"``: no channel knowledge, no equalisation: ``c^ = y``. The phase of
  ``h`` is uniform, so ``E[y | c] = 0``: what the receiver gets is the signal rotated and
  scaled at random per block. It is the lower bound that shows what CSI is worth.

``ChannelResult.measured_snr_db`` is the realised average received SNR of the draw,
``10 log10(sum |h c|^2 / sum |n|^2)`` over the sent symbols (before equalisation; after ZF
the noise has infinite mean for Rayleigh fading, so no post-equalisation mean is reported).
``ChannelResult.gains`` holds the ``h`` of every complex symbol.

The complex-domain functions (:func:`rayleigh_gains`, :func:`complex_noise`,
:func:`equalize`) are what the digital link (:mod:`gesco.digital`) uses too.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from gesco.channel.models import (
    ChannelModel,
    ChannelResult,
    _per_sample_mean,
    noise_variance_for_psnr,
    register_channel,
)
from gesco.errors import ChannelParameterError

#: default coherence block: 1024 complex symbols (about one 14 x 72 OFDM slot)
DEFAULT_BLOCK_LENGTH = 1024

Equalizer = Literal["mmse", "zf"]


def to_complex(x: torch.Tensor) -> torch.Tensor:
    """``(B, ...)`` real -> ``(B, ceil(n / 2))`` complex64, pairing consecutive flattened symbols."""
    flat = x.reshape(x.shape[0], -1).float()
    if flat.shape[1] % 2:
        flat = torch.nn.functional.pad(flat, (0, 1))
    return torch.complex(flat[:, 0::2].contiguous(), flat[:, 1::2].contiguous())


def from_complex(c: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_complex`: ``(B, m)`` complex -> real of ``like``'s shape and dtype."""
    flat = torch.view_as_real(c.contiguous()).reshape(c.shape[0], -1)
    n = like[0].numel()
    return flat[:, :n].reshape(like.shape).to(like.dtype)


def rayleigh_gains(
    batch: int, n: int, block_length: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Block Rayleigh fading coefficients ``h ~ CN(0, 1)``, ``(batch, n)`` complex64.

    ``h`` is constant over ``block_length`` consecutive symbols (``0``: over all ``n``).
    """
    if block_length < 0:
        raise ChannelParameterError(f"block_length must be >= 0, got {block_length}")
    bl = n if block_length == 0 else min(block_length, n)
    blocks = -(-n // bl)
    g = torch.randn((batch, blocks, 2), generator=generator, device=device, dtype=torch.float32) * (0.5**0.5)
    h = torch.complex(g[..., 0], g[..., 1])
    return h.repeat_interleave(bl, dim=1)[:, :n]


def complex_noise(shape: tuple[int, ...], no: torch.Tensor, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """``CN(0, no)`` noise of ``shape`` (complex64); ``no`` broadcasts as ``(B, 1, ...)``."""
    g = torch.randn((*shape, 2), generator=generator, device=device, dtype=torch.float32)
    std = torch.sqrt(torch.as_tensor(no, dtype=torch.float32, device=device) / 2.0)
    return torch.complex(g[..., 0] * std, g[..., 1] * std)


def equalize(y: torch.Tensor, h: torch.Tensor, no: torch.Tensor, equalizer: str, es: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One-tap equalisation with perfect CSI.

    Args:
        y: received symbols (complex), ``y = h c + n``.
        h: channel coefficients, same shape.
        no: noise variance ``E|n|^2`` (broadcastable to ``y``).
        equalizer: ``"zf"`` (``y / h``) or ``"mmse"`` (``conj(h) y / (|h|^2 + no / es)``).
        es: mean symbol energy ``E|c|^2`` (for the MMSE regularisation).
    Returns:
        ``(c_hat, no_eff)``: the estimate and its effective noise variance per symbol,
        ``no / |h|^2`` for ZF; for MMSE the unbiased-equivalent ``no / |h|^2`` as well
        (what a demapper should use after dividing out the MMSE bias).
    """
    g = h.abs().square()
    no = torch.as_tensor(no, dtype=torch.float32, device=y.device)
    no_eff = no / g.clamp_min(1e-30)
    if equalizer == "zf":
        return y / torch.where(g > 0, h, torch.ones_like(h)), no_eff
    if equalizer == "mmse":
        return h.conj() * y / (g + no / es), no_eff
    raise ChannelParameterError(f"unknown equalizer {equalizer!r}; known: ['mmse', 'zf']")


class _FadingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    block_length: int = Field(DEFAULT_BLOCK_LENGTH, ge=0, le=1 << 30,
                              description="complex symbols per fading block (0: one block per sample)")


class RayleighParams(_FadingParams):
    equalizer: Equalizer = Field("mmse", description="perfect-CSI equaliser: 'mmse' or 'zf'")


@dataclass(frozen=True)
class ComplexTransmission:
    """Complex symbols through a fading model: what a receiver with (or without) CSI has.

    Attributes:
        equalized: ``(B, m)`` complex64, the equaliser's output (``y`` itself without CSI).
        no_eff: ``(B, m)`` float32, the noise variance of ``equalized`` for a demapper,
            ``N0 / |h|^2`` with CSI (``N0`` without).
        gains: ``(B, m)`` complex64, the channel coefficients ``h``.
        received: ``(B, m)`` complex64, ``y = h c + n`` before equalisation.
        noise: ``(B, m)`` complex64, ``n``.
    """

    equalized: torch.Tensor
    no_eff: torch.Tensor
    gains: torch.Tensor
    received: torch.Tensor
    noise: torch.Tensor


class ComplexFadingChannel(ChannelModel):
    """A fading model over complex symbols; subclasses draw the gains (:meth:`complex_gains`).

    ``_transmit`` is shared: power normalisation to ``P = 1`` per real symbol, pairing into
    complex symbols (:func:`to_complex`), ``y = h c + n`` with ``n ~ CN(0, 2 sigma^2)``,
    equalisation with perfect CSI (``csi``) or none, back to real symbols.
    """

    csi: bool = True
    equalizer: str = "mmse"

    @abstractmethod
    def complex_gains(self, batch: int, m: int, generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
        """``(batch, m)`` complex64 channel coefficients with ``E|h|^2 = 1``."""

    def transmit_complex(
        self, c: torch.Tensor, no: torch.Tensor | float, generator: torch.Generator | None = None, es: float = 1.0
    ) -> ComplexTransmission:
        """Send complex symbols ``c`` (``(B, m)``) with noise variance ``no = E|n|^2`` per symbol.

        The digital link (:mod:`gesco.digital`) calls this with unit-energy QAM symbols and
        ``no = 10^(-PSNR/10)``; the analog ``_transmit`` with ``E|c|^2 = 2`` and ``no = 2 sigma^2``.
        """
        b, m = c.shape
        no_t = torch.as_tensor(no, dtype=torch.float32, device=c.device)
        if no_t.dim() == 1:
            no_t = no_t.view(-1, 1)
        h = self.complex_gains(b, m, generator, c.device)
        noise = complex_noise((b, m), no_t, generator, c.device)
        y = h * c + noise
        if self.csi:
            eq, no_eff = equalize(y, h, no_t, self.equalizer, es=es)
        else:
            eq, no_eff = y, no_t.expand(b, m)
        return ComplexTransmission(equalized=eq, no_eff=no_eff, gains=h, received=y, noise=noise)

    def _transmit(self, x, psnr_db, mask, generator):
        power_in, n = _per_sample_mean(x * x, mask)
        scale = torch.sqrt(power_in).clamp_min(1e-12)
        view = (-1,) + (1,) * (x.dim() - 1)
        z = x / scale.view(view).to(x.dtype)
        sigma2 = noise_variance_for_psnr(psnr_db.to(x.device), 1.0)  # per real symbol, P = 1
        c = to_complex(z)
        b, m = c.shape
        t = self.transmit_complex(c, (2.0 * sigma2).float(), generator, es=2.0)
        z_rx = from_complex(t.equalized, z)
        if mask is not None:
            mc = to_complex(mask.expand_as(x).to(torch.float32))
            sent = (mc.real > 0) | (mc.imag > 0)  # a complex symbol is sent when one of its halves is
        else:
            sent = torch.ones((b, m), dtype=torch.bool, device=x.device)
        rx_sig = ((t.gains * c).abs().square() * sent).sum(1, dtype=torch.float64)
        rx_noise = (t.noise.abs().square() * sent).sum(1, dtype=torch.float64)
        snr = 10.0 * torch.log10(rx_sig / rx_noise.clamp_min(1e-300))
        power, _ = _per_sample_mean(z * z, mask)
        received = (z_rx * scale.view(view).to(z_rx.dtype)).to(x.dtype)
        if mask is not None:
            received = torch.where(mask.expand_as(x).to(torch.bool), received, x)  # symbols not sent come back unchanged
        return ChannelResult(
            received=received,
            scale=scale.float(),
            noise_variance=sigma2.float().expand(b).clone(),
            signal_power=power.float(),
            measured_snr_db=snr.float(),
            channel_uses=n.long(),
            gains=t.gains,
        )


class RayleighBlockChannel(ComplexFadingChannel):
    """Rayleigh block fading with power normalisation (module docstring for the conventions).

    Args:
        block_length: complex symbols per fading block (0: one per sample).
        equalizer: ``"mmse"`` or ``"zf"`` (perfect CSI).
    """

    name = "rayleigh"
    summary = "Rayleigh block fading, perfect CSI and one-tap equalisation (MMSE or ZF) at the receiver"
    Params = RayleighParams
    csi = True

    def __init__(self, block_length: int = DEFAULT_BLOCK_LENGTH, equalizer: str = "mmse") -> None:
        if equalizer not in ("mmse", "zf"):
            raise ChannelParameterError(f"unknown equalizer {equalizer!r}; known: ['mmse', 'zf']")
        self.block_length = int(block_length)
        self.equalizer = equalizer

    def params(self) -> dict[str, Any]:
        return {"block_length": self.block_length, "equalizer": self.equalizer, "csi": self.csi}

    def complex_gains(self, batch, m, generator, device):
        return rayleigh_gains(batch, m, self.block_length, generator, device)


class RayleighNoCSIChannel(RayleighBlockChannel):
    """Rayleigh block fading, receiver without CSI: ``c^ = y = h c + n`` (no equalisation)."""

    name = "rayleigh-nocsi"
    summary = "Rayleigh block fading, no CSI: the receiver takes y = h c + n as it is (no equalisation)"
    Params = _FadingParams
    csi = False

    def __init__(self, block_length: int = DEFAULT_BLOCK_LENGTH) -> None:
        super().__init__(block_length=block_length, equalizer="mmse")

    def params(self) -> dict[str, Any]:
        return {"block_length": self.block_length, "csi": self.csi}


register_channel(RayleighBlockChannel)
register_channel(RayleighNoCSIChannel)


class UnitGainChannel(ComplexFadingChannel):
    """AWGN over complex symbols (``h = 1``): the ``"awgn"`` model as the digital link sees it.

    Not registered (``"awgn"`` is :class:`gesco.channel.AWGNChannel`); see :func:`complex_model`.
    """

    name = "awgn"
    csi = True
    equalizer = "zf"

    def complex_gains(self, batch, m, generator, device):
        return torch.ones((batch, m), dtype=torch.complex64, device=device)


def complex_model(name: str, params: dict[str, Any] | None = None) -> ComplexFadingChannel:
    """The complex-baseband view of a registered model, for links that send complex symbols.

    ``"awgn"`` -> :class:`UnitGainChannel`; the fading models are themselves.

    Raises:
        ChannelParameterError: unknown model / bad parameters, or a model without a complex
            baseband form (``"authors-code"``).
    """
    from gesco.channel.models import get_channel

    if name == "awgn":
        validate = get_channel("awgn", **(params or {}))  # same validation as everywhere
        del validate
        return UnitGainChannel()
    ch = get_channel(name, **(params or {}))
    if not isinstance(ch, ComplexFadingChannel):
        raise ChannelParameterError(
            f"channel {name!r} has no complex-baseband form; the digital link runs over 'awgn', 'rayleigh', "
            "'rayleigh-nocsi' and 'tdl'"
        )
    return ch
