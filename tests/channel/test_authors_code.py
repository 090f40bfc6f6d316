"""The authors'-code channel preset (gesco.channel.models.AuthorsCodeChannel).

The public GESCO code adds noise to the un-normalised 0/1 maps with a standard deviation
looked up per nominal PSNR (docs/authors-code.md); the table does not follow Eq. (1).
"""

from __future__ import annotations

import pytest
import torch

from gesco.channel import AuthorsCodeChannel, get_channel
from gesco.channel.models import AUTHORS_NOISE_STD
from gesco.errors import ChannelParameterError

# noise std per nominal PSNR (dB) in the authors' code
REFERENCE_TABLE = {100: 0.0, 30: 0.05, 25: 0.08, 20: 0.13, 15: 0.22, 10: 0.36, 5: 0.6, 1: 0.9}


def test_table_is_the_authors_table():
    assert AUTHORS_NOISE_STD == {float(k): v for k, v in REFERENCE_TABLE.items()}


def test_registered_under_its_name():
    assert isinstance(get_channel("authors-code"), AuthorsCodeChannel)


def test_empirical_noise_std_matches_the_table():
    # relative std of a std estimate over 1e6 draws: 1/sqrt(2e6) ~ 0.07 %; allow 1 %
    psnrs = [p for p in REFERENCE_TABLE if p != 100]
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (len(psnrs), 1_000_000), generator=g).float()  # 0/1 symbols
    res = get_channel("authors-code").transmit(x, torch.tensor(psnrs, dtype=torch.float64), generator=g)
    noise = res.received.double() - x.double()
    for i, p in enumerate(psnrs):
        std = REFERENCE_TABLE[p]
        assert noise[i].std().item() == pytest.approx(std, rel=0.01), p
        assert res.noise_variance[i].item() == pytest.approx(std**2, rel=1e-6)


def test_no_power_normalisation():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 500_000, generator=g)
    x[1] *= 10.0  # 100x the power: same noise
    res = get_channel("authors-code").transmit(x, 10.0, generator=g)
    assert torch.equal(res.scale, torch.ones(2))
    torch.testing.assert_close(res.signal_power.double(), (x.double() ** 2).mean(1), rtol=1e-5, atol=0)
    noise_std = (res.received.double() - x.double()).std(1)
    torch.testing.assert_close(noise_std, torch.full((2,), 0.36, dtype=torch.float64), rtol=0.01, atol=0)
    # the measured SNR is the real one of this draw, not the nominal 10 dB
    expected_snr = 10 * torch.log10((x.double() ** 2).mean(1) / 0.36**2)
    torch.testing.assert_close(res.measured_snr_db.double(), expected_snr, rtol=0, atol=0.05)


def test_psnr_100_is_exactly_clean():
    x = torch.rand(2, 3, 8, 8)
    res = get_channel("authors-code").transmit(x, 100.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(res.received, x)
    assert res.noise_variance.tolist() == [0.0, 0.0]


def test_per_sample_psnr():
    x = torch.zeros(3, 200_000)
    res = get_channel("authors-code").transmit(x, [1.0, 10.0, 30.0], generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(res.received.std(1), torch.tensor([0.9, 0.36, 0.05]), rtol=0.01, atol=0)
    assert res.channel_uses.tolist() == [200_000] * 3


@pytest.mark.parametrize("bad", [7.0, 0.0, 2.0, 40.0, 10.5, [10.0, 12.0]])
def test_unknown_psnr_raises_channel_parameter_error(bad):
    x = torch.rand(2 if isinstance(bad, list) else 1, 10)
    with pytest.raises(ChannelParameterError) as exc:
        get_channel("authors-code").transmit(x, bad)
    msg = str(exc.value)
    assert "authors-code" in msg and "only knows" in msg


def test_mask_limits_noise_and_power_to_the_sent_symbols():
    x = torch.zeros(1, 4, 32, 32)
    x[0, :2] = 1.0
    mask = torch.zeros(1, 4, 1, 1)
    mask[0, :3] = 1
    res = get_channel("authors-code").transmit(x, 5.0, mask=mask, generator=torch.Generator().manual_seed(4))
    assert torch.equal(res.received[0, 3], torch.zeros(32, 32))
    assert res.channel_uses.item() == 3 * 32 * 32
    assert res.signal_power.item() == pytest.approx(2 / 3, rel=1e-6)
