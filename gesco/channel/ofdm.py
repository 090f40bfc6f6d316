"""3GPP TDL channel over OFDM (``"tdl"``): frequency-selective fading through Sionna.

The complex symbols (two real symbols each, as in :mod:`gesco.channel.fading`) fill OFDM
resource grids of ``num_ofdm_symbols x fft_size`` resource elements (one grid = one slot;
every resource element carries data: pilots, guard carriers and the cyclic prefix are not
modelled and not counted). Each grid gets an independent channel realisation of the 3GPP
TR 38.901 tapped-delay-line model ``model`` (Sionna's ``sionna.phy.channel.tr38901.TDL``,
power-delay profile normalised to total energy 1) at ``delay_spread_ns``, carrier
``carrier_frequency_ghz`` and terminal speed ``speed_mps`` (Doppler within the slot); its
frequency response at the subcarriers (``cir_to_ofdm_channel``) is the per-resource-element
gain ``H[l, k]``. With a cyclic prefix longer than the channel there is no inter-symbol or
inter-carrier interference, so per resource element

    y[l, k] = H[l, k] c[l, k] + n[l, k],   n ~ CN(0, 2 sigma^2),   E|H|^2 = 1,

and Eq. (1) holds per real symbol exactly as for AWGN and Rayleigh: the PSNR is the average
received SNR. The receiver has perfect CSI and equalises every resource element
(``equalizer`` ``"mmse"`` or ``"zf"``, :func:`gesco.channel.fading.equalize`).

Needs the optional extra ``[sionna]`` (``pip install -e ".[sionna]"``); without it building
the model raises :class:`~gesco.errors.MissingExtraError`.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from gesco.channel.fading import complex_noise, equalize, from_complex, to_complex
from gesco.channel.models import (
    ChannelModel,
    ChannelResult,
    _per_sample_mean,
    noise_variance_for_psnr,
    register_channel,
)
from gesco.optional import require_sionna

#: cyclic-prefix fraction used only to place the OFDM symbols in time (NR normal CP, ~7 %)
CP_FRACTION = 144 / 2048

TDLModel = Literal["A", "B", "C", "D", "E"]


class TDLParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    model: TDLModel = Field("A", description="3GPP TR 38.901 TDL profile (A-C NLOS, D-E LOS)")
    delay_spread_ns: float = Field(100.0, gt=0, le=10_000, description="RMS delay spread in ns (38.901 'nominal': 100)")
    carrier_frequency_ghz: float = Field(3.5, gt=0, le=100, description="carrier frequency in GHz")
    subcarrier_spacing_khz: float = Field(30.0, gt=0, le=960, description="subcarrier spacing in kHz")
    fft_size: int = Field(256, ge=8, le=4096, description="subcarriers per OFDM symbol")
    num_ofdm_symbols: int = Field(14, ge=1, le=1024, description="OFDM symbols per grid (slot)")
    speed_mps: float = Field(0.0, ge=0, le=500, description="terminal speed in m/s (Doppler)")
    equalizer: Literal["mmse", "zf"] = Field("mmse", description="perfect-CSI equaliser per resource element")


class _SeededTDLFactory:
    """Builds Sionna TDL models whose random draws come from a generator we pass in."""

    _lock = threading.Lock()

    @staticmethod
    @lru_cache(maxsize=16)
    def build(model: str, delay_spread_s: float, carrier_hz: float, speed: float, device: str):
        require_sionna("the 'tdl' channel model")
        from sionna.phy.channel.tr38901 import TDL

        class SeededTDL(TDL):
            """Sionna's TDL, drawing from ``self.generator`` instead of the global config RNG."""

            generator: torch.Generator | None = None

            @property
            def torch_rng(self) -> torch.Generator:  # noqa: D401 - Sionna's attribute
                gen = getattr(self, "generator", None)
                return gen if gen is not None else super().torch_rng

        return SeededTDL(model=model, delay_spread=delay_spread_s, carrier_frequency=carrier_hz,
                         min_speed=speed, max_speed=speed, device=device)


def tdl_frequency_response(
    params: TDLParams, grids: int, generator: torch.Generator | None = None, device: str = "cpu"
) -> torch.Tensor:
    """Channel frequency responses of ``grids`` independent slots: ``(grids, num_ofdm_symbols, fft_size)`` complex64."""
    require_sionna("the 'tdl' channel model")
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies

    tdl = _SeededTDLFactory.build(params.model, params.delay_spread_ns * 1e-9, params.carrier_frequency_ghz * 1e9,
                                  float(params.speed_mps), str(device))
    scs = params.subcarrier_spacing_khz * 1e3
    with _SeededTDLFactory._lock:
        tdl.generator = generator
        try:
            a, tau = tdl(batch_size=grids, num_time_steps=params.num_ofdm_symbols,
                         sampling_frequency=scs / (1.0 + CP_FRACTION))
        finally:
            tdl.generator = None
    freqs = subcarrier_frequencies(params.fft_size, scs, device=str(device))
    h = cir_to_ofdm_channel(freqs, a, tau, normalize=False)  # (grids, 1, 1, 1, 1, symbols, fft)
    return h.reshape(grids, params.num_ofdm_symbols, params.fft_size).to(torch.complex64)


class TDLOFDMChannel(ChannelModel):
    """3GPP TDL fading over OFDM with perfect CSI (module docstring for the conventions)."""

    name = "tdl"
    summary = "3GPP TR 38.901 TDL (A-E) over OFDM, per-subcarrier perfect-CSI equalisation (needs [sionna])"
    Params = TDLParams

    def __init__(self, **params: Any) -> None:
        self.p = TDLParams(**params)
        require_sionna("the 'tdl' channel model")

    def params(self) -> dict[str, Any]:
        return self.p.model_dump()

    def _transmit(self, x, psnr_db, mask, generator):
        power_in, n = _per_sample_mean(x * x, mask)
        scale = torch.sqrt(power_in).clamp_min(1e-12)
        view = (-1,) + (1,) * (x.dim() - 1)
        z = x / scale.view(view).to(x.dtype)
        sigma2 = noise_variance_for_psnr(psnr_db.to(x.device), 1.0)
        c = to_complex(z)
        b, m = c.shape
        re = self.p.num_ofdm_symbols * self.p.fft_size
        per_sample = -(-m // re)
        hf = tdl_frequency_response(self.p, b * per_sample, generator, str(x.device))
        h = hf.reshape(b, per_sample * re)[:, :m]
        no = (2.0 * sigma2).float().view(-1, 1)
        noise = complex_noise((b, m), no, generator, x.device)
        y = h * c + noise
        c_hat, _ = equalize(y, h, no, self.p.equalizer, es=2.0)
        z_rx = from_complex(c_hat, z)
        if mask is not None:
            mc = to_complex(mask.expand_as(x).to(torch.float32))
            sent = (mc.real > 0) | (mc.imag > 0)
        else:
            sent = torch.ones((b, m), dtype=torch.bool, device=x.device)
        rx_sig = ((h * c).abs().square() * sent).sum(1, dtype=torch.float64)
        rx_noise = (noise.abs().square() * sent).sum(1, dtype=torch.float64)
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
            gains=h,
        )


register_channel(TDLOFDMChannel)
