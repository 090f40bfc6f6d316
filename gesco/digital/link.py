"""The conventional digital link: bytes -> CRC -> 5G LDPC -> QAM -> channel -> demapping -> decoding.

Built from Sionna's blocks (the ``[sionna]`` extra; :func:`gesco.optional.require_sionna`):
``CRCEncoder("CRC24A")`` per code block, ``LDPC5GEncoder`` (3GPP 38.212 with rate matching
and the bit interleaver for the QAM order), ``Mapper("qam")`` (Gray-labelled, unit
energy), the channel of :mod:`gesco.channel` in complex baseband
(:func:`gesco.channel.fading.complex_model`), ``Demapper("app")`` and ``LDPC5GDecoder``
(belief propagation, ``num_iter`` iterations, no early stop), then ``CRCDecoder``.

Conventions (``docs/digital.md``):

* the payload of ``L`` bits is split into ``C = ceil(L / (K_MAX - 24))`` code blocks of
  ``k_info = ceil(L / C)`` bits (the last one zero-padded) plus a 24-bit CRC, ``k = k_info + 24``;
  each is coded to ``n = ceil(k / r)`` bits rounded up to a multiple of ``m`` (down, at
  ``r = 1/5``, the encoder's lowest rate);
* symbols have unit energy, ``Es = 1``, and the noise is ``CN(0, N0)`` with
  ``N0 = 10^(-PSNR/10)``: the SNR per complex symbol equals the SNR per real symbol of
  Eq. (1), so the PSNR means the same thing as for the analog rows;
* **channel uses** = ``2 x`` the complex symbols sent, ``2 C n / m`` (one complex symbol is
  two real channel uses, as the analog rows count real symbols);
* with CSI the receiver equalises each symbol by ZF, ``y / h``, and the demapper uses the
  per-symbol noise ``N0 / |h|^2`` (exact LLRs for a one-tap channel); without CSI
  (``"rayleigh-nocsi"``) it demaps ``y`` with ``N0`` and fails;
* the frame is delivered only if every code block passes its CRC (the receiver cannot use
  a partial JPEG / PNG / map stream): below the decoding threshold the frame is lost as a
  whole, the cliff effect. ``bit_errors`` (a genie count against the sent bits) and
  ``undetected`` (CRC passed but bits differ) are reported for the evaluation.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from gesco.channel.fading import complex_model, equalize
from gesco.channel.models import _check_psnr
from gesco.digital.mcs import DEFAULT_GAP_DB, MCS, select_mcs
from gesco.errors import ChannelParameterError, PayloadError
from gesco.optional import require_sionna

#: largest code block (information + CRC bits) used: base graph 2's limit, valid at every rate
K_MAX = 3840
#: lowest rate of Sionna's 5G encoder (no outer repetition)
MIN_RATE = 0.2
#: CRC bits per code block (CRC24A of 38.212)
CRC_BITS = 24
#: BP iterations of the LDPC decoder by default (Sionna's default)
DEFAULT_ITERATIONS = 20


@dataclass(frozen=True)
class CodeLayout:
    """How ``payload_bits`` are cut into code blocks for an MCS (no Sionna needed)."""

    payload_bits: int
    mcs: MCS
    blocks: int
    k_info: int
    k: int
    n: int

    @property
    def symbols(self) -> int:
        """Complex symbols sent."""
        return self.blocks * self.n // self.mcs.bits_per_symbol

    @property
    def channel_uses(self) -> int:
        """Real channel uses: two per complex symbol."""
        return 2 * self.symbols


def code_layout(payload_bits: int, mcs: MCS) -> CodeLayout:
    """The code-block segmentation of ``payload_bits`` at ``mcs`` (module docstring)."""
    if payload_bits < 1:
        raise PayloadError(f"nothing to send: {payload_bits} payload bits")
    blocks = -(-payload_bits // (K_MAX - CRC_BITS))
    k_info = max(-(-payload_bits // blocks), 12)  # the 5G encoder needs k >= 12
    k = k_info + CRC_BITS
    m = mcs.bits_per_symbol
    n = -(-math.ceil(k / mcs.code_rate) // m) * m
    while k / n < MIN_RATE:  # rounding up to a multiple of m must not leave the encoder's range
        n -= m
    return CodeLayout(payload_bits, mcs, blocks, k_info, k, n)


def channel_uses_for(payload_bytes: int, mcs: MCS) -> int:
    """Real channel uses needed to send ``payload_bytes`` bytes at ``mcs``."""
    return code_layout(8 * payload_bytes, mcs).channel_uses


@dataclass
class DigitalResult:
    """One frame through the digital link.

    Attributes:
        delivered: the received bytes when every code block passed its CRC, else ``None`` (lost).
        mcs: the MCS used; ``layout``: its code-block layout.
        channel: the channel model and its parameters.
        failed_blocks: code blocks whose CRC failed.
        bit_errors: information bits that differ from the sent ones (genie count).
        undetected: some block passed its CRC with wrong bits.
        measured_snr_db: realised average received SNR, ``10 log10(sum |h x|^2 / sum |n|^2)``.
        timings: seconds in ``encode`` (CRC + LDPC + mapping), ``channel``, ``decode``
            (demapping + LDPC + CRC).
    """

    delivered: bytes | None
    mcs: MCS
    layout: CodeLayout
    channel: dict[str, Any]
    failed_blocks: int
    bit_errors: int
    undetected: bool
    measured_snr_db: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.delivered is not None

    def summary(self) -> dict[str, Any]:
        """JSON-ready fields for stores and logs."""
        return {
            "lost": not self.ok, "mcs": self.mcs.name, "bits_per_symbol": self.mcs.bits_per_symbol,
            "code_rate": self.mcs.code_rate, "blocks": self.layout.blocks, "k": self.layout.k, "n": self.layout.n,
            "payload_bits": self.layout.payload_bits, "channel_uses": self.layout.channel_uses,
            "failed_blocks": self.failed_blocks, "bit_errors": self.bit_errors, "undetected": self.undetected,
            "measured_snr_db": self.measured_snr_db, **{f"{k}_s": v for k, v in self.timings.items()},
        }


@lru_cache(maxsize=32)
def _blocks(k_info: int, n: int, m: int, num_iter: int) -> tuple[Any, ...]:
    """Sionna blocks for one layout (cached: building the LDPC graph costs ~0.1 s)."""
    require_sionna("the digital link")
    from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
    from sionna.phy.mapping import Demapper, Mapper

    crc_enc = CRCEncoder("CRC24A", k=k_info, device="cpu")
    crc_dec = CRCDecoder(crc_enc, device="cpu")
    enc = LDPC5GEncoder(k_info + CRC_BITS, n, num_bits_per_symbol=m, device="cpu")
    dec = LDPC5GDecoder(enc, num_iter=num_iter, hard_out=True, return_infobits=True, device="cpu")
    mapper = Mapper("qam", m, device="cpu")
    demapper = Demapper("app", "qam", m, device="cpu")
    return crc_enc, crc_dec, enc, dec, mapper, demapper


class DigitalLink:
    """A 5G LDPC + QAM link over a :mod:`gesco.channel` model.

    Args:
        channel: model name (``"awgn"``, ``"rayleigh"``, ``"rayleigh-nocsi"``, ``"tdl"``).
        channel_params: its parameters (validated like everywhere).
        num_iter: LDPC belief-propagation iterations.
        gap_db: the rate-adaptation gap of :func:`gesco.digital.mcs.select_mcs`.
    """

    def __init__(self, channel: str = "awgn", channel_params: dict[str, Any] | None = None,
                 num_iter: int = DEFAULT_ITERATIONS, gap_db: float = DEFAULT_GAP_DB) -> None:
        require_sionna("the digital link")
        if num_iter < 1:
            raise ChannelParameterError(f"num_iter must be >= 1, got {num_iter}")
        self.model = complex_model(channel, channel_params)
        self.channel = {"name": channel, "params": self.model.params()}
        self.num_iter = int(num_iter)
        self.gap_db = float(gap_db)

    def mcs_for(self, psnr_db: float) -> MCS:
        return select_mcs(psnr_db, self.channel["name"], self.gap_db)

    @torch.no_grad()
    def send(self, payload: bytes, psnr_db: float, mcs: MCS | None = None,
             generator: torch.Generator | None = None) -> DigitalResult:
        """Send ``payload`` at ``psnr_db`` (average SNR, Eq. 1) with ``mcs`` (default: :meth:`mcs_for`)."""
        psnr = float(_check_psnr(psnr_db, 1)[0])
        mcs = mcs or self.mcs_for(psnr)
        layout = code_layout(8 * len(payload), mcs)
        crc_enc, crc_dec, enc, dec, mapper, demapper = _blocks(layout.k_info, layout.n, mcs.bits_per_symbol,
                                                               self.num_iter)
        t0 = time.perf_counter()
        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
        padded = np.zeros(layout.blocks * layout.k_info, dtype=np.float32)
        padded[: bits.size] = bits
        u = torch.from_numpy(padded).view(layout.blocks, layout.k_info)
        c = enc(crc_enc(u))                                  # (C, n) coded bits
        x = mapper(c)                                        # (C, n / m) unit-energy QAM symbols
        t1 = time.perf_counter()
        no = 10.0 ** (-psnr / 10.0)
        t = self.model.transmit_complex(x.reshape(1, -1).to(torch.complex64), no, generator, es=1.0)
        if self.model.csi:
            y, no_eff = equalize(t.received, t.gains, torch.tensor(no), "zf")
        else:
            y, no_eff = t.received, torch.full(t.received.shape, no)
        sig = (t.gains * x.reshape(1, -1)).abs().square().sum(dtype=torch.float64)
        snr = 10.0 * math.log10(float(sig) / max(float(t.noise.abs().square().sum(dtype=torch.float64)), 1e-300))
        t2 = time.perf_counter()
        llr = demapper(y.reshape(x.shape), no_eff.reshape(x.shape).clamp(max=1e6).float())
        u_crc = dec(llr)                                     # (C, k) hard bits
        u_hat, crc_ok = crc_dec(u_crc)
        t3 = time.perf_counter()
        ok = bool(crc_ok.all())
        wrong = (u_hat != u).reshape(-1)[: bits.size]
        bit_errors = int(wrong.sum())
        per_block_wrong = (u_hat != u).any(dim=1)
        undetected = bool((crc_ok.reshape(-1) & per_block_wrong).any())
        delivered = None
        if ok:
            rx = u_hat.reshape(-1)[: bits.size].to(torch.uint8).numpy()
            delivered = np.packbits(rx).tobytes()
        return DigitalResult(
            delivered=delivered, mcs=mcs, layout=layout, channel=self.channel,
            failed_blocks=int((~crc_ok.reshape(-1)).sum()), bit_errors=bit_errors, undetected=undetected,
            measured_snr_db=snr, timings={"encode": t1 - t0, "channel": t2 - t1, "decode": t3 - t2},
        )


def describe(result: DigitalResult) -> dict[str, Any]:
    """:meth:`DigitalResult.summary` plus the MCS as a dict."""
    return {**result.summary(), "mcs_detail": asdict(result.mcs)}
