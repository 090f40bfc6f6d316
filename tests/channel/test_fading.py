"""Rayleigh block fading (gesco.channel.fading): statistics over 10^6 symbols, CSI, masks.

Conventions checked: two real symbols form one complex symbol; h ~ CN(0, 1) per block
(|h| Rayleigh with scale 1/sqrt(2), E|h|^2 = 1); noise sigma^2 per real symbol from Eq. (1),
so the PSNR is the average received SNR. Tolerances are several standard deviations of each
estimator (stated at each check); seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gesco.channel import CHANNELS, get_channel, validate_channel_params
from gesco.channel.fading import equalize, from_complex, rayleigh_gains, to_complex
from gesco.errors import ChannelParameterError

N = 1_000_000


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registry_lists_fading_models():
    assert {"awgn", "authors-code", "rayleigh", "rayleigh-nocsi", "tdl"} <= set(CHANNELS)


def test_complex_pairing_round_trips_odd_sizes():
    x = torch.randn(3, 5, 7)  # 35 real symbols: odd, padded
    c = to_complex(x)
    assert c.shape == (3, 18)
    assert torch.equal(c[0, 0], torch.complex(x[0, 0, 0], x[0, 0, 1]))
    assert torch.equal(from_complex(c, x), x)


def test_rayleigh_gain_statistics_over_1e6_symbols():
    h = rayleigh_gains(1, N, block_length=1, generator=_gen(1))[0].to(torch.complex128)
    power = h.abs().square()
    # E|h|^2 = 1; std of the mean of an Exp(1) over 1e6 draws is 1e-3 -> 0.5 % is 5 sigma
    assert power.mean().item() == pytest.approx(1.0, abs=5e-3)
    # circular symmetry: mean ~ 0 (std 7e-4 per part), I and Q independent with variance 1/2
    assert abs(h.real.mean().item()) < 4e-3 and abs(h.imag.mean().item()) < 4e-3
    assert h.real.var().item() == pytest.approx(0.5, abs=4e-3)
    assert abs(torch.corrcoef(torch.stack([h.real, h.imag]))[0, 1].item()) < 5e-3
    # |h| follows a Rayleigh distribution with scale 1/sqrt(2) (KS test on 1e6 samples)
    ks = stats.kstest(h.abs().numpy(), stats.rayleigh(scale=1 / math.sqrt(2)).cdf)
    assert ks.pvalue > 1e-3, ks
    # and it is not, e.g., a Rayleigh of the wrong scale (the test can fail)
    assert stats.kstest(h.abs().numpy(), stats.rayleigh(scale=0.75).cdf).pvalue < 1e-6
    # the phase is uniform on (-pi, pi]
    assert stats.kstest(torch.angle(h).numpy(), stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > 1e-3


def test_block_fading_is_constant_within_blocks_and_independent_between():
    h = rayleigh_gains(2, 10_000, block_length=100, generator=_gen(2))
    blocks = h.reshape(2, 100, 100)
    assert torch.equal(blocks, blocks[:, :, :1].expand_as(blocks))
    first = blocks[:, :, 0].flatten()
    assert abs(torch.corrcoef(torch.stack([first[:-1].abs(), first[1:].abs()]))[0, 1].item()) < 0.2
    q = rayleigh_gains(1, 50, block_length=0, generator=_gen(3))
    assert torch.equal(q, q[:, :1].expand_as(q))


@pytest.mark.parametrize("psnr", [1.0, 10.0, 20.0, 30.0])
def test_realised_average_snr_is_the_psnr(psnr):
    """Fast fading (one h per complex symbol): the average received SNR is Eq. (1)'s PSNR."""
    x = 2.0 + torch.randn(1, N, generator=_gen(4))
    res = get_channel("rayleigh", block_length=1).transmit(x, psnr, generator=_gen(5))
    # std of 10 log10(sum|hc|^2 / sum|n|^2) over 5e5 complex symbols: ~4.34 * sqrt(4 / 5e5) ~ 0.012 dB
    assert res.measured_snr_db.item() == pytest.approx(psnr, abs=0.06)
    assert res.noise_variance.item() == pytest.approx(10 ** (-psnr / 10), rel=1e-6)
    assert res.channel_uses.item() == N
    assert res.gains.shape == (1, N // 2)


def test_realised_snr_of_one_quasi_static_block_is_the_faded_snr():
    x = torch.randn(4, 20_000, generator=_gen(6))
    res = get_channel("rayleigh", block_length=0).transmit(x, 10.0, generator=_gen(7))
    g = res.gains[:, 0].abs().square().double()
    expected = 10.0 + 10 * torch.log10(g)
    # 1e4 complex symbols per sample: the noise power estimate is within ~0.05 dB
    assert torch.allclose(res.measured_snr_db.double(), expected, atol=0.2)


def test_zf_with_perfect_csi_leaves_noise_over_h():
    x = 1.0 + torch.randn(1, N, generator=_gen(8))
    ch = get_channel("rayleigh", block_length=1, equalizer="zf")
    res = ch.transmit(x, 10.0, generator=_gen(9))
    z = x / res.scale.view(-1, 1)
    err = to_complex((res.received / res.scale.view(-1, 1)) - z)[0]
    h = res.gains[0]
    # ZF: c^ - c = n / h with n ~ CN(0, 2 sigma^2): (c^ - c) h / sqrt(2 sigma^2) is CN(0, 1)
    w = (err * h) / math.sqrt(2 * 0.1)
    assert w.abs().square().mean().item() == pytest.approx(1.0, abs=0.01)
    assert abs(w.mean().item()) < 0.01


def test_perfect_csi_recovers_the_symbols_at_100_db_and_nocsi_does_not():
    x = torch.rand(2, 3, 32, 64)
    for eq in ("zf", "mmse"):
        res = get_channel("rayleigh", equalizer=eq).transmit(x, 100.0, generator=_gen(10))
        assert torch.allclose(res.received, x, atol=1e-3), eq
    res = get_channel("rayleigh-nocsi").transmit(x, 100.0, generator=_gen(10))
    rx = to_complex(res.received / res.scale.view(-1, 1, 1, 1))
    c = to_complex(x / res.scale.view(-1, 1, 1, 1))
    # without equalisation the receiver gets h c: the same gains, not the symbols
    assert torch.allclose(rx, res.gains * c, atol=1e-3)
    assert (res.received - x).abs().max() > 0.5


def test_nocsi_received_power_is_the_sent_power_plus_noise():
    x = torch.randn(1, N, generator=_gen(11))
    res = get_channel("rayleigh-nocsi", block_length=1).transmit(x, 10.0, generator=_gen(12))
    rx = res.received / res.scale.view(-1, 1)
    # E|h c + n|^2 / 2 = P + sigma^2 = 1.1 per real symbol; std of the mean ~ 2e-3
    assert rx.double().square().mean().item() == pytest.approx(1.1, abs=0.01)
    # and E[y c*] = E[h] |c|^2 = 0: the phase is lost
    corr = (to_complex(rx) * to_complex(x / res.scale.view(-1, 1)).conj()).mean()
    assert abs(corr.item()) < 0.01


def test_mmse_shrinks_deep_fades_and_zf_does_not():
    y = torch.tensor([0.01 + 0j, 1.0 + 0j])
    h = torch.tensor([0.01 + 0j, 1.0 + 0j])
    zf, no_eff = equalize(y, h, torch.tensor(0.2), "zf", es=2.0)
    mmse, _ = equalize(y, h, torch.tensor(0.2), "mmse", es=2.0)
    assert torch.allclose(zf, torch.ones(2, dtype=torch.complex64))
    assert mmse[0].abs() < 0.01 and mmse[1].real == pytest.approx(1 / 1.1, rel=1e-5)
    assert no_eff[0].item() == pytest.approx(0.2 / 1e-4, rel=1e-4)


def test_mask_symbols_not_sent_come_back_unchanged():
    x = torch.rand(2, 4, 8, 8)
    mask = torch.ones(2, 4, 1, 1)
    mask[1, 2:] = 0
    res = get_channel("rayleigh").transmit(x, 5.0, mask=mask, generator=_gen(13))
    assert torch.equal(res.received[1, 2:], x[1, 2:])
    assert res.channel_uses.tolist() == [256, 128]
    alone = get_channel("rayleigh").transmit(x[1:, :2], 5.0, generator=_gen(13))
    assert res.scale[1].item() == pytest.approx(alone.scale[0].item(), rel=1e-6)


def test_same_seed_same_draw():
    x = torch.rand(1, 1000)
    a = get_channel("rayleigh").transmit(x, 5.0, generator=_gen(14)).received
    b = get_channel("rayleigh").transmit(x, 5.0, generator=_gen(14)).received
    assert torch.equal(a, b)


def test_parameters_are_validated_with_a_list_of_what_is_known():
    assert validate_channel_params("rayleigh", {"block_length": "64"}) == {"block_length": 64, "equalizer": "mmse"}
    with pytest.raises(ChannelParameterError, match="unknown channel model 'fading'; known: .*rayleigh"):
        get_channel("fading")
    with pytest.raises(ChannelParameterError, match="block_length.*Parameters of 'rayleigh'"):
        get_channel("rayleigh", block_length=-5)
    with pytest.raises(ChannelParameterError, match="colour"):
        get_channel("rayleigh", colour="red")
    with pytest.raises(ChannelParameterError, match="equalizer"):
        get_channel("rayleigh", equalizer="ml")
    with pytest.raises(ChannelParameterError, match="equalizer"):
        get_channel("rayleigh-nocsi", equalizer="zf")  # no CSI, nothing to equalise
    assert get_channel("rayleigh", block_length=8).params() == {"block_length": 8, "equalizer": "mmse", "csi": True}
    assert get_channel("rayleigh-nocsi").params()["csi"] is False
    assert np.isfinite(get_channel("rayleigh").transmit(torch.rand(1, 10), 1.0).measured_snr_db.item())
