"""Noisy training through the fading models: NoisyMapsConfig takes a channel model and its parameters."""

from __future__ import annotations

import pytest
import torch

from gesco.errors import ChannelParameterError
from gesco.semantics.noisy import NoisyMapsConfig, corrupt_conditioning


def test_config_validates_the_channel_and_its_parameters():
    cfg = NoisyMapsConfig(channel="rayleigh", channel_params={"block_length": "32"})
    assert cfg.channel_params == {"block_length": 32, "equalizer": "mmse"}
    assert cfg.to_dict()["channel_params"] == {"block_length": 32, "equalizer": "mmse"}
    assert NoisyMapsConfig().channel_params == {"normalize_power": True}
    with pytest.raises(ChannelParameterError, match="known: .*rayleigh"):
        NoisyMapsConfig(channel="fading")
    with pytest.raises(ChannelParameterError, match="block_length"):
        NoisyMapsConfig(channel="rayleigh", channel_params={"block_length": -1})


@pytest.mark.parametrize("channel", ["rayleigh", "rayleigh-nocsi"])
def test_fading_corrupts_present_maps_only(channel):
    cond = torch.zeros(2, 6, 16, 16)
    cond[0, 1, :8] = 1
    cond[0, 3, 8:] = 1
    cond[1, 2] = 1
    cfg = NoisyMapsConfig(channel=channel, psnrs_db=(5.0,), weights=(1.0,), fds=False)
    out, psnr = corrupt_conditioning(cond, torch.tensor([False, True]), cfg, torch.Generator().manual_seed(0))
    assert psnr.tolist() == [5.0, 5.0]
    for b, absent in ((0, [0, 2, 4, 5]), (1, [0, 1, 3, 4])):
        assert torch.equal(out[b, absent], cond[b, absent])  # maps not sent stay exact zeros
    assert not torch.allclose(out[0, 1], cond[0, 1])
