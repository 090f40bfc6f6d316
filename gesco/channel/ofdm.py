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

from gesco.channel.fading import ComplexFadingChannel
from gesco.channel.models import register_channel
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
            def torch_rng(self) -> torch.Generator:
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


class TDLOFDMChannel(ComplexFadingChannel):
    """3GPP TDL fading over OFDM with perfect CSI (module docstring for the conventions)."""

    name = "tdl"
    summary = "3GPP TR 38.901 TDL (A-E) over OFDM, per-subcarrier perfect-CSI equalisation (needs [sionna])"
    Params = TDLParams
    csi = True

    def __init__(self, **params: Any) -> None:
        self.p = TDLParams(**params)
        self.equalizer = self.p.equalizer
        require_sionna("the 'tdl' channel model")

    def params(self) -> dict[str, Any]:
        return self.p.model_dump()

    def complex_gains(self, batch, m, generator, device):
        """Consecutive symbols fill the resource grids (OFDM symbol by OFDM symbol), one slot per grid."""
        re = self.p.num_ofdm_symbols * self.p.fft_size
        per_sample = -(-m // re)
        hf = tdl_frequency_response(self.p, batch * per_sample, generator, str(device))
        return hf.reshape(batch, per_sample * re)[:, :m]


register_channel(TDLOFDMChannel)
