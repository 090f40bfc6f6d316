"""The digital link through Sionna: error-free above its threshold, lost below it (the cliff).

Thresholds: no code decodes below the AWGN Shannon limit of its efficiency; the rate
adaptation keeps a 3.5 dB gap to capacity, and the 5G LDPC codes measured by
bench/bench_digital.py need 1.3-2.9 dB (docs/digital.md).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("sionna.phy", reason="the digital link needs the [sionna] extra (CI installs it)")

from gesco.digital.link import DigitalLink
from gesco.digital.mcs import DEFAULT_GAP_DB, MCS, select_mcs
from gesco.errors import ChannelParameterError, MissingExtraError

PAYLOAD = np.random.default_rng(0).integers(0, 256, 1500, dtype=np.uint8).tobytes()  # 12 kbit, 4 code blocks


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def awgn():
    torch.set_num_threads(1)
    return DigitalLink("awgn")


@pytest.mark.parametrize("psnr", [1.0, 10.0, 30.0])
def test_selected_mcs_decodes_error_free_on_awgn(awgn, psnr):
    r = awgn.send(PAYLOAD, psnr, generator=_gen(int(psnr)))
    assert r.ok and r.delivered == PAYLOAD
    assert r.bit_errors == 0 and r.failed_blocks == 0 and not r.undetected
    assert r.mcs == select_mcs(psnr, "awgn")
    assert r.layout.channel_uses == 2 * r.layout.blocks * r.layout.n // r.mcs.bits_per_symbol
    assert abs(r.measured_snr_db - psnr) < 0.5  # >= 1680 symbols: the estimate has a std of ~0.1 dB


@pytest.mark.parametrize("mcs", [MCS(2, 1 / 3), MCS(4, 0.6), MCS(8, 0.9)])
def test_below_the_shannon_limit_the_frame_is_lost(awgn, mcs):
    r = awgn.send(PAYLOAD, mcs.awgn_shannon_snr_db() - 1.0, mcs=mcs, generator=_gen(1))
    assert not r.ok and r.delivered is None
    assert r.failed_blocks == r.layout.blocks and r.bit_errors > 0
    # and at the rate adaptation's gap above the limit the same code decodes: the cliff is steep
    r = awgn.send(PAYLOAD, mcs.awgn_shannon_snr_db() + DEFAULT_GAP_DB, mcs=mcs, generator=_gen(2))
    assert r.ok and r.delivered == PAYLOAD


def test_fading_with_and_without_csi():
    ok = DigitalLink("rayleigh", {"block_length": 64}).send(PAYLOAD, 100.0, generator=_gen(3))
    assert ok.ok and ok.delivered == PAYLOAD
    lost = DigitalLink("rayleigh-nocsi").send(PAYLOAD, 30.0, mcs=MCS(2, 0.2), generator=_gen(4))
    assert not lost.ok  # without CSI even the most robust MCS fails: the phase is unknown


def test_quasi_static_fading_loses_whole_frames_in_deep_fades():
    link = DigitalLink("rayleigh", {"block_length": 0})  # one fade per frame
    results = [link.send(PAYLOAD[:200], 10.0, mcs=select_mcs(10.0, "awgn"), generator=_gen(10 + s)) for s in range(12)]
    lost = sum(not r.ok for r in results)
    # P(|h|^2 < 2^eta - 1 / 10) for 16QAM r=0.6 (eta 2.4): 1 - exp(-0.43) ~ 0.35 -> some, not all
    assert 0 < lost < 12


def test_settings_are_validated(monkeypatch):
    with pytest.raises(ChannelParameterError, match="complex-baseband"):
        DigitalLink("authors-code")
    with pytest.raises(ChannelParameterError, match="known"):
        DigitalLink("fading")
    with pytest.raises(ChannelParameterError):
        DigitalLink("awgn", num_iter=0)
    monkeypatch.setitem(sys.modules, "sionna.phy", None)
    with pytest.raises(MissingExtraError, match=r"\[sionna\]"):
        DigitalLink("awgn")
