"""The AWGN channel with power normalisation (gesco.channel, Eq. 1 of the paper).

    PSNR = 10 log10(P / sigma^2),  sigma^2 = P / 10^(PSNR / 10)  per real symbol,

with the transmitted symbols normalised to P = 1 (scale s = sqrt(mean(x^2)) per sample).
The statistical checks use 10^6 symbols per PSNR and fixed seeds; the tolerances are
several standard deviations of the estimators (stated at each check).
"""

from __future__ import annotations

import math

import pytest
import torch

from gesco.channel import PAPER_PSNRS_DB, AWGNChannel, get_channel, noise_variance_for_psnr
from gesco.errors import ChannelParameterError, GescoInputError, ShapeError

N_SYMBOLS = 1_000_000
PSNRS = (1.0, 5.0, 10.0, 15.0, 20.0, 30.0)


def _signal(batch: int, n: int = N_SYMBOLS, seed: int = 0) -> torch.Tensor:
    """``(batch, n)`` float32 symbols with a non-zero mean and a power far from 1."""
    g = torch.Generator().manual_seed(seed)
    return 3.0 + 2.0 * torch.randn(batch, n, generator=g)


def _normalised_noise(x: torch.Tensor, res) -> torch.Tensor:
    """``(received - sent)`` brought back to the normalised domain (divided by the scale)."""
    view = (-1,) + (1,) * (x.dim() - 1)
    return (res.received.double() - x.double()) / res.scale.double().view(view)


@pytest.fixture(scope="module")
def paper_psnr_draw():
    """One sample of 10^6 symbols per PSNR of the paper (per-sample PSNR tensor)."""
    x = _signal(len(PSNRS))
    res = get_channel("awgn").transmit(x, torch.tensor(PSNRS), generator=torch.Generator().manual_seed(1))
    return x, res


# ----------------------------------------------------------------------------- Eq. (1)


def test_noise_variance_for_psnr_is_eq_1():
    assert noise_variance_for_psnr(10.0).item() == pytest.approx(0.1, rel=1e-12)
    assert noise_variance_for_psnr(0.0, power=2.5).item() == pytest.approx(2.5, rel=1e-12)
    got = noise_variance_for_psnr(torch.tensor(PAPER_PSNRS_DB))
    for p, v in zip(PAPER_PSNRS_DB, got.tolist()):
        assert 10 * math.log10(1.0 / v) == pytest.approx(p, abs=1e-9)


def test_paper_psnrs():
    assert PAPER_PSNRS_DB == (1.0, 5.0, 10.0, 15.0, 20.0, 30.0, 100.0)


def test_measured_snr_is_within_0_1_db_of_the_request(paper_psnr_draw):
    # std of the SNR estimate over 1e6 symbols: 10/ln(10) * sqrt(2/1e6) ~ 0.006 dB
    x, res = paper_psnr_draw
    noise = _normalised_noise(x, res)
    power = ((x.double() / res.scale.double()[:, None]) ** 2).mean(1)
    measured_here = 10 * torch.log10(power / (noise**2).mean(1))
    for i, p in enumerate(PSNRS):
        assert abs(measured_here[i].item() - p) < 0.1, (p, measured_here[i].item())
        assert abs(res.measured_snr_db[i].item() - p) < 0.1, (p, res.measured_snr_db[i].item())
        # the reported measurement is the one computed here from received - sent
        assert res.measured_snr_db[i].item() == pytest.approx(measured_here[i].item(), abs=1e-3)


def test_empirical_noise_variance_matches_eq_1(paper_psnr_draw):
    # relative std of a variance estimate over 1e6 Gaussian draws: sqrt(2/1e6) ~ 0.14 %; allow 1 %
    x, res = paper_psnr_draw
    noise = _normalised_noise(x, res)
    for i, p in enumerate(PSNRS):
        sigma2 = 1.0 / 10 ** (p / 10)
        assert res.noise_variance[i].item() == pytest.approx(sigma2, rel=1e-6)
        assert noise[i].var().item() == pytest.approx(sigma2, rel=0.01), p
        # zero mean: |mean| < 5 standard errors
        assert abs(noise[i].mean().item()) < 5 * math.sqrt(sigma2 / N_SYMBOLS)


def test_noise_is_gaussian_and_white(paper_psnr_draw):
    x, res = paper_psnr_draw
    noise = _normalised_noise(x, res)[2]  # the 10 dB sample
    u = noise / noise.std()
    # mass within one sigma of a standard normal: 0.6827 (binomial std over 1e6: 0.0005)
    assert (u.abs() < 1).double().mean().item() == pytest.approx(0.6827, abs=0.003)
    # kurtosis 3 (std of the estimate over 1e6 draws: sqrt(96 / 1e6) ~ 0.01)
    assert (u**4).mean().item() == pytest.approx(3.0, abs=0.05)
    # independent symbols: lag-1 correlation within 5 / sqrt(N)
    assert abs((u[1:] * u[:-1]).mean().item()) < 5 / math.sqrt(N_SYMBOLS)


def test_psnr_100_is_effectively_clean():
    x = _signal(2, 200_000)
    res = get_channel("awgn").transmit(x, 100.0, generator=torch.Generator().manual_seed(2))
    # sigma = 1e-5 in the normalised domain; 200k draws stay within ~5 sigma
    assert _normalised_noise(x, res).abs().max().item() < 1e-4
    # in the signal's units the noise std is 1e-5 * s (s ~ 3.6 here): within 10 std of x
    torch.testing.assert_close(res.received, x, rtol=0, atol=10 * 1e-5 * res.scale.max().item())
    assert (res.measured_snr_db - 100.0).abs().max().item() < 0.1


# ----------------------------------------------------------------------------- power normalisation


def test_power_normalisation_gives_p_1_and_reports_the_scale():
    x = _signal(3, 50_000, seed=3) * torch.tensor([[1.0], [1e-3], [1e3]])
    res = get_channel("awgn").transmit(x, 20.0, generator=torch.Generator().manual_seed(3))
    expected_scale = torch.sqrt((x.double() ** 2).mean(1))
    torch.testing.assert_close(res.scale.double(), expected_scale, rtol=1e-6, atol=0)
    torch.testing.assert_close(res.signal_power, torch.ones(3), rtol=1e-5, atol=0)
    normalised = x.double() / res.scale.double()[:, None]
    torch.testing.assert_close((normalised**2).mean(1), torch.ones(3, dtype=torch.float64), rtol=1e-5, atol=0)
    # the noise in the signal's units scales with s: sigma * s
    noise_std = (res.received.double() - x.double()).std(1)
    torch.testing.assert_close(noise_std / res.scale.double(), torch.full((3,), 0.1, dtype=torch.float64), rtol=0.02, atol=0)


def test_restoration_is_exact_at_psnr_100():
    x = _signal(2, 10_000, seed=4) * 50.0
    res = get_channel("awgn").transmit(x, 100.0, generator=torch.Generator().manual_seed(4))
    assert res.received.dtype == x.dtype and res.received.shape == x.shape
    # 1e-5 noise std (normalised) + float32 rounding of x / s * s
    assert ((res.received - x).abs() / res.scale[:, None]).max().item() < 1e-4


def test_without_normalisation_the_noise_follows_the_signal_power():
    ch = AWGNChannel(normalize_power=False)
    x = 0.5 * _signal(2, N_SYMBOLS, seed=5)  # P = 0.25 * (9 + 4) = 3.25
    res = ch.transmit(x, torch.tensor([10.0, 20.0]), generator=torch.Generator().manual_seed(5))
    assert torch.equal(res.scale, torch.ones(2))
    power = (x.double() ** 2).mean(1)
    torch.testing.assert_close(res.signal_power.double(), power, rtol=1e-5, atol=0)
    sigma2 = power / torch.tensor([10.0, 100.0], dtype=torch.float64)
    torch.testing.assert_close(res.noise_variance.double(), sigma2, rtol=1e-5, atol=0)
    noise = res.received.double() - x.double()
    torch.testing.assert_close(noise.var(1), sigma2, rtol=0.01, atol=0)
    assert (res.measured_snr_db - torch.tensor([10.0, 20.0])).abs().max().item() < 0.1


def test_trailing_shape_and_dtype_are_kept():
    x = torch.rand(2, 5, 8, 16, generator=torch.Generator().manual_seed(6))
    for dtype in (torch.float32, torch.float64):
        res = get_channel("awgn").transmit(x.to(dtype), 10.0, generator=torch.Generator().manual_seed(6))
        assert res.received.shape == x.shape and res.received.dtype == dtype
        assert res.channel_uses.tolist() == [5 * 8 * 16] * 2
        for field in (res.scale, res.noise_variance, res.signal_power, res.measured_snr_db, res.channel_uses):
            assert field.shape == (2,)


# ----------------------------------------------------------------------------- mask semantics


def _one_hot_maps(k: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, k, (h, w), generator=g)
    return torch.nn.functional.one_hot(label, k).permute(2, 0, 1).float()


def test_padded_batch_with_mask_equals_sending_each_sample_alone():
    a = _one_hot_maps(3, 64, 128, seed=7)  # 3 present maps
    b = _one_hot_maps(5, 64, 128, seed=8) * 2.0  # 5 present maps, another power
    padded = torch.zeros(2, 6, 64, 128)
    padded[0, :3] = a
    padded[0, 3:] = 5.0  # garbage in the slots that are not sent: must be ignored
    padded[1, :5] = b
    mask = torch.zeros(2, 6, 1, 1)  # broadcast over H, W
    mask[0, :3] = 1
    mask[1, :5] = 1
    ch = get_channel("awgn")
    res = ch.transmit(padded, torch.tensor([10.0, 1.0]), mask=mask, generator=torch.Generator().manual_seed(9))
    alone_a = ch.transmit(a[None], 10.0, generator=torch.Generator().manual_seed(10))
    alone_b = ch.transmit(b[None], 1.0, generator=torch.Generator().manual_seed(11))
    for i, alone in enumerate((alone_a, alone_b)):
        assert res.scale[i].item() == pytest.approx(alone.scale[0].item(), rel=1e-6)
        assert res.signal_power[i].item() == pytest.approx(alone.signal_power[0].item(), rel=1e-6)
        assert res.noise_variance[i].item() == pytest.approx(alone.noise_variance[0].item(), rel=1e-6)
        assert res.channel_uses[i].item() == alone.channel_uses[0].item()
    assert res.channel_uses.tolist() == [3 * 64 * 128, 5 * 64 * 128]
    assert res.scale[0].item() == pytest.approx(math.sqrt(1 / 3), rel=1e-6)  # one-hot over 3 maps: P = 1/3
    # the measured SNR only counts the sent symbols (98k / 164k of them)
    assert (res.measured_snr_db - torch.tensor([10.0, 1.0])).abs().max().item() < 0.1


def test_masked_symbols_get_no_noise():
    x = torch.zeros(2, 4, 16, 16)
    x[:, :2] = _one_hot_maps(2, 16, 16, seed=12)
    x[1, 3] = 7.0  # a non-zero symbol that is not sent
    mask = torch.zeros_like(x)
    mask[:, :2] = 1
    for name in ("awgn", "authors-code"):
        res = get_channel(name).transmit(x, 1.0, mask=mask, generator=torch.Generator().manual_seed(13))
        assert torch.equal(res.received[:, 2], torch.zeros(2, 16, 16)), name  # exact zeros stay zero
        torch.testing.assert_close(res.received[1, 3], torch.full((16, 16), 7.0), rtol=1e-6, atol=0)
        assert (res.received[:, :2] != x[:, :2]).float().mean().item() > 0.99, name  # sent ones are noisy


def test_bool_mask_equals_float_mask():
    x = _one_hot_maps(4, 8, 8, seed=14)[None]
    mask = torch.zeros(1, 4, 8, 8, dtype=torch.bool)
    mask[:, :2] = True
    ch = get_channel("awgn")
    r1 = ch.transmit(x, 5.0, mask=mask, generator=torch.Generator().manual_seed(15))
    r2 = ch.transmit(x, 5.0, mask=mask.float(), generator=torch.Generator().manual_seed(15))
    assert torch.equal(r1.received, r2.received) and torch.equal(r1.scale, r2.scale)


def test_mask_that_cannot_broadcast_raises_shape_error():
    with pytest.raises(ShapeError, match="mask shape"):
        get_channel("awgn").transmit(torch.ones(2, 3, 4, 4), 10.0, mask=torch.ones(2, 3, 5))


# ----------------------------------------------------------------------------- reproducibility


def test_same_seed_same_output_different_seed_different_output():
    x = torch.rand(3, 4, 32, 32, generator=torch.Generator().manual_seed(16))
    for name in ("awgn", "authors-code"):
        ch = get_channel(name)
        r1 = ch.transmit(x, 10.0, generator=torch.Generator().manual_seed(123))
        r2 = ch.transmit(x, 10.0, generator=torch.Generator().manual_seed(123))
        r3 = ch.transmit(x, 10.0, generator=torch.Generator().manual_seed(124))
        assert torch.equal(r1.received, r2.received), name
        assert torch.equal(r1.measured_snr_db, r2.measured_snr_db), name
        assert not torch.equal(r1.received, r3.received), name
        assert (r1.received != r3.received).float().mean().item() > 0.99, name


def test_a_generator_advances_between_calls():
    x = torch.rand(1, 1000)
    g = torch.Generator().manual_seed(0)
    ch = get_channel("awgn")
    assert not torch.equal(ch.transmit(x, 10.0, generator=g).received, ch.transmit(x, 10.0, generator=g).received)


# ----------------------------------------------------------------------------- per-sample PSNR


def test_per_sample_psnr_tensor_and_list():
    x = _signal(3, 200_000, seed=17)
    psnrs = [1.0, 10.0, 30.0]
    ch = get_channel("awgn")
    res_t = ch.transmit(x, torch.tensor(psnrs), generator=torch.Generator().manual_seed(18))
    res_l = ch.transmit(x, psnrs, generator=torch.Generator().manual_seed(18))
    assert torch.equal(res_t.received, res_l.received)
    torch.testing.assert_close(
        res_t.noise_variance.double(), noise_variance_for_psnr(torch.tensor(psnrs)), rtol=1e-6, atol=0
    )
    # 200k symbols: SNR estimate std ~ 0.014 dB
    assert (res_t.measured_snr_db - torch.tensor(psnrs)).abs().max().item() < 0.1


def test_scalar_psnr_is_used_for_every_sample():
    res = get_channel("awgn").transmit(torch.rand(4, 100), 15.0)
    torch.testing.assert_close(res.noise_variance, torch.full((4,), 10 ** -1.5), rtol=1e-6, atol=0)


@pytest.mark.parametrize("psnrs", [[10.0, 20.0], [1.0, 5.0, 10.0, 15.0]])
def test_psnr_count_not_matching_the_batch_raises(psnrs):
    with pytest.raises(ChannelParameterError, match="for a batch of 3"):
        get_channel("awgn").transmit(torch.rand(3, 10), psnrs)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", ["awgn", "authors-code"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), [10.0, float("nan")]])
def test_non_finite_psnr_raises_channel_parameter_error(name, bad):
    with pytest.raises(ChannelParameterError, match="finite"):
        get_channel(name).transmit(torch.rand(2, 10), bad)


@pytest.mark.parametrize("name", ["awgn", "authors-code"])
@pytest.mark.parametrize("x", [torch.rand(10), torch.tensor(1.0)])
def test_non_batched_input_raises_shape_error(name, x):
    with pytest.raises(ShapeError, match=r"batched \(B, \.\.\.\)"):
        get_channel(name).transmit(x, 10.0)


@pytest.mark.parametrize("name", ["awgn", "authors-code"])
@pytest.mark.parametrize("shape", [(0, 5), (2, 0), (1, 3, 0, 4)])
def test_empty_input_raises_shape_error(name, shape):
    with pytest.raises(ShapeError, match="empty"):
        get_channel(name).transmit(torch.zeros(shape), 10.0)


@pytest.mark.parametrize("name", ["awgn", "authors-code"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_input_raises_an_input_error(name, bad):
    x = torch.rand(2, 10)
    x[1, 3] = bad
    with pytest.raises(GescoInputError, match="NaN or inf"):
        get_channel(name).transmit(x, 10.0)


def test_integer_input_is_sent_as_float():
    x = torch.randint(0, 2, (2, 1000))
    res = get_channel("awgn").transmit(x, 100.0)
    assert res.received.dtype == torch.float32
    torch.testing.assert_close(res.received, x.float(), rtol=0, atol=1e-3)


@pytest.mark.parametrize("bad", ["", "AWGN", "Rayleigh", "authors"])
def test_unknown_channel_name_raises_channel_parameter_error(bad):
    with pytest.raises(ChannelParameterError) as exc:
        get_channel(bad)
    assert repr(bad) in str(exc.value)
    assert "awgn" in str(exc.value) and "authors-code" in str(exc.value)


def test_get_channel_default_is_normalising_awgn():
    ch = get_channel()
    assert isinstance(ch, AWGNChannel) and ch.normalize_power
    assert not get_channel("awgn", normalize_power=False).normalize_power
