"""The 3GPP TDL channel over OFDM (gesco.channel.ofdm, Sionna's TR 38.901 TDL).

Checks: E|H|^2 = 1 (the PSNR is the average received SNR), the frequency correlation of the
response matches the power-delay profile, R(df) = sum_m p_m exp(-j 2 pi df tau_m), the
realised SNR over ~10^6 symbols, perfect-CSI recovery at 100 dB, reproducible draws, and
the error naming the [sionna] extra when Sionna is missing.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from gesco.channel import get_channel
from gesco.errors import ChannelParameterError, MissingExtraError

sionna = pytest.importorskip("sionna.phy", reason="the 'tdl' channel needs the [sionna] extra (CI installs it)")

from gesco.channel.ofdm import TDLParams, _SeededTDLFactory, tdl_frequency_response


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("model,ds", [("A", 100.0), ("C", 300.0), ("D", 30.0)])
def test_frequency_response_power_and_correlation_follow_the_profile(model, ds):
    p = TDLParams(model=model, delay_spread_ns=ds, fft_size=128, num_ofdm_symbols=2)
    h = tdl_frequency_response(p, 2000, _gen(1)).to(torch.complex128)  # 2000 independent slots
    assert h.shape == (2000, 2, 128)
    # E|H|^2 = 1; the per-slot mean has a std of ~0.3-0.45 (few strong taps) -> ~0.01 over 2000 slots
    assert h.abs().square().mean().item() == pytest.approx(1.0, abs=0.05)
    tdl = _SeededTDLFactory.build(model, ds * 1e-9, 3.5e9, 0.0, "cpu")
    powers = tdl.mean_powers.double().numpy()
    delays = tdl.delays.double().numpy()
    for lag in (1, 8, 32, 64):
        df = lag * p.subcarrier_spacing_khz * 1e3
        theory = np.sum(powers * np.exp(-2j * np.pi * df * delays))
        emp = (h[:, :, lag:] * h[:, :, :-lag].conj()).mean().item()
        assert abs(emp - theory) < 0.06, (lag, emp, theory)


def test_longer_delay_spread_is_more_frequency_selective():
    def corr(ds: float) -> float:
        h = tdl_frequency_response(TDLParams(delay_spread_ns=ds, fft_size=64, num_ofdm_symbols=1), 500, _gen(2))
        return abs((h[:, :, 32:] * h[:, :, :-32].conj()).mean().item())
    assert corr(30.0) > 0.9 and corr(1000.0) < 0.7


def test_realised_snr_and_channel_uses_over_1e6_symbols():
    x = 1.0 + torch.randn(1, 1_000_000, generator=_gen(3))
    res = get_channel("tdl").transmit(x, 10.0, generator=_gen(4))
    # ~140 independent slots of 3584 resource elements: the received power averages to 1 within ~0.1 dB
    assert res.measured_snr_db.item() == pytest.approx(10.0, abs=0.4)
    assert res.channel_uses.item() == 1_000_000
    assert res.gains.shape == (1, 500_000)


def test_perfect_csi_recovers_at_100_db_and_draws_are_reproducible():
    x = torch.rand(2, 3, 32, 64)
    ch = get_channel("tdl", model="B", speed_mps=30.0, equalizer="zf")
    a = ch.transmit(x, 100.0, generator=_gen(5))
    assert torch.allclose(a.received, x, atol=1e-3)
    b = get_channel("tdl").transmit(x, 5.0, generator=_gen(6)).received
    c = get_channel("tdl").transmit(x, 5.0, generator=_gen(6)).received
    assert torch.equal(b, c)
    assert not torch.allclose(b, x, atol=0.05)


def test_tdl_parameters_are_validated():
    with pytest.raises(ChannelParameterError, match="model"):
        get_channel("tdl", model="Z")
    with pytest.raises(ChannelParameterError, match="delay_spread_ns"):
        get_channel("tdl", delay_spread_ns=-1)
    assert get_channel("tdl", model="C").params()["model"] == "C"


def test_missing_sionna_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sionna.phy", None)  # import of sionna.phy now raises ImportError
    with pytest.raises(MissingExtraError, match=r"\[sionna\]"):
        get_channel("tdl")
