"""Modulation and coding schemes of the digital link, chosen per PSNR.

An MCS is a square QAM of ``m`` bits per complex symbol and a 5G LDPC code rate ``r``;
its spectral efficiency is ``eta = m r`` information bits per complex symbol, i.e.
``eta / 2`` per real channel use (one complex symbol = two real channel uses, as everywhere
in :mod:`gesco.channel`).

Rate adaptation (:func:`select_mcs`): the transmitter knows the channel's average SNR (the
PSNR of Eq. 1; for unit-energy symbols the SNR per complex symbol ``Es/N0`` equals the SNR
per real symbol) but not the fades. It picks the most efficient MCS with

    eta <= C(SNR / gap),     gap = 10^(gap_db / 10),

where ``C`` is the capacity of the channel (bits per complex symbol): ``log2(1 + SNR)`` for
AWGN and the ergodic ``E[log2(1 + |h|^2 SNR)]`` (``|h|^2 ~ Exp(1)``) for the fading
models. The gap (default :data:`DEFAULT_GAP_DB`, 3.5 dB) is the distance of a practical
code from capacity at the block lengths used here: ``bench/bench_digital.py --part
thresholds`` measured, for every MCS of the table on AWGN (code blocks of ~3000 bits, 20
BP iterations, 5 of 5 frames of 12 kbit decoded), thresholds 1.3 to 2.9 dB above the
Shannon limit of the MCS's efficiency (1.3-1.9 dB for QPSK, 2.7-2.9 dB for 256-QAM);
3.5 dB leaves at least 0.6 dB of margin on AWGN. On the fading channels a code block spans
few fades, so the ergodic capacity is optimistic and frames are lost (the outage / cliff).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gesco.errors import ChannelParameterError

#: the MCS table: code rates per QAM order (bits per symbol), in the spirit of 3GPP 38.214
#: Table 5.1.3.1-2: each order starts where the lower one stops paying; Sionna's 5G
#: encoder takes rates from 1/5 to ~0.93
MCS_RATES: dict[int, tuple[float, ...]] = {
    2: (0.2, 0.25, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.75),
    4: (0.4, 0.5, 0.6, 2 / 3, 0.75, 5 / 6),
    6: (0.6, 2 / 3, 0.75, 5 / 6, 0.9),
    8: (0.7, 0.75, 5 / 6, 0.9),
}
#: distance of the scheme from capacity, in dB of SNR (see the module docstring)
DEFAULT_GAP_DB = 3.5
#: channels the capacity formula knows: no fading or (ergodic) Rayleigh-like fading
FADING_MODELS = frozenset({"rayleigh", "rayleigh-nocsi", "tdl"})


@dataclass(frozen=True, order=True)
class MCS:
    """A QAM order and an LDPC rate.

    Attributes:
        bits_per_symbol: ``m`` (2, 4, 6, 8).
        code_rate: ``r`` in (0, 0.95].
    """

    bits_per_symbol: int
    code_rate: float

    @property
    def efficiency(self) -> float:
        """Information bits per complex symbol, ``m r``."""
        return self.bits_per_symbol * self.code_rate

    @property
    def name(self) -> str:
        mod = {2: "QPSK", 4: "16QAM", 6: "64QAM", 8: "256QAM"}.get(self.bits_per_symbol, f"{2 ** self.bits_per_symbol}QAM")
        return f"{mod} r={self.code_rate:.3f}"

    def awgn_shannon_snr_db(self) -> float:
        """The SNR (dB) at which AWGN capacity equals this MCS's efficiency: no code works below it."""
        return 10.0 * math.log10(2.0 ** self.efficiency - 1.0)


def mcs_table() -> list[MCS]:
    """Every MCS, sorted by efficiency (then by lower modulation)."""
    table = [MCS(m, r) for m, rates in MCS_RATES.items() for r in rates]
    return sorted(table, key=lambda x: (round(x.efficiency, 9), x.bits_per_symbol))


@lru_cache(maxsize=1)
def _laguerre(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.laguerre.laggauss(n)


def capacity_bits(snr_linear: float, fading: bool) -> float:
    """Capacity in bits per complex symbol: AWGN ``log2(1 + snr)`` or Rayleigh-ergodic ``E log2(1 + g snr)``."""
    if snr_linear < 0:
        raise ChannelParameterError(f"SNR must be >= 0 (linear), got {snr_linear}")
    if not fading:
        return math.log2(1.0 + snr_linear)
    x, w = _laguerre()  # E[f(g)], g ~ Exp(1) = sum w_i f(x_i) (Gauss-Laguerre)
    return float(np.sum(w * np.log2(1.0 + x * snr_linear)))


def select_mcs(psnr_db: float, channel: str = "awgn", gap_db: float = DEFAULT_GAP_DB) -> MCS:
    """The most efficient MCS with ``eta <= C(SNR / gap)``; the least efficient one if none fits.

    Args:
        psnr_db: the average SNR of Eq. (1), in dB.
        channel: channel model name (fading models use the ergodic Rayleigh capacity).
        gap_db: distance from capacity, in dB.
    """
    if not math.isfinite(psnr_db):
        raise ChannelParameterError(f"PSNR must be finite, got {psnr_db}")
    snr = 10.0 ** ((psnr_db - gap_db) / 10.0)
    cap = capacity_bits(snr, channel in FADING_MODELS)
    table = mcs_table()
    fitting = [m for m in table if m.efficiency <= cap]
    if not fitting:
        return table[0]
    best = round(fitting[-1].efficiency, 9)
    return min((m for m in fitting if round(m.efficiency, 9) == best), key=lambda m: m.bits_per_symbol)
