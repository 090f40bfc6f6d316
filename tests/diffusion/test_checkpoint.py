import json

import pytest
import torch

from gesco.diffusion.checkpoint import ModelCard, load_checkpoint, read_card, save_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig
from gesco.diffusion.unet import SpadeUNet, UNetConfig
from gesco.errors import CheckpointError


def _save(tmp_path, cfg):
    torch.manual_seed(0)
    m = SpadeUNet(cfg)
    card = ModelCard(unet=cfg, diffusion=DiffusionConfig(), resolution=(16, 32), training={"steps": 3})
    save_checkpoint(tmp_path / "ck", m, card)
    return m


def test_round_trip(tmp_path, tiny_unet_config):
    m = _save(tmp_path, tiny_unet_config)
    m2, card = load_checkpoint(tmp_path / "ck.safetensors")
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    assert card.training["steps"] == 3 and card.resolution == (16, 32)
    assert read_card(tmp_path / "ck.json").unet == tiny_unet_config


def test_mismatch_names_the_field(tmp_path, tiny_unet_config):
    _save(tmp_path, tiny_unet_config)
    other = UNetConfig(**{**tiny_unet_config.to_dict(), "base_channels": 16})
    with pytest.raises(CheckpointError, match="unet.base_channels"):
        load_checkpoint(tmp_path / "ck", expect_unet=other)
    with pytest.raises(CheckpointError, match="resolution"):
        load_checkpoint(tmp_path / "ck", expect_resolution=(64, 128))
    with pytest.raises(CheckpointError, match="class_space"):
        load_checkpoint(tmp_path / "ck", expect_class_space="ade20k")


def test_missing_and_corrupt_files_are_named(tmp_path, tiny_unet_config):
    with pytest.raises(CheckpointError, match=r"nothere.json.*gesco train diffusion"):
        load_checkpoint(tmp_path / "nothere")
    _save(tmp_path, tiny_unet_config)
    (tmp_path / "ck.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match=r"ck.safetensors are corrupt"):
        load_checkpoint(tmp_path / "ck")
    _save(tmp_path, tiny_unet_config)
    (tmp_path / "ck.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path / "ck")


def test_weights_that_do_not_fit_the_config(tmp_path, tiny_unet_config):
    _save(tmp_path, tiny_unet_config)
    d = json.loads((tmp_path / "ck.json").read_text())
    d["unet"]["base_channels"] = 16  # the JSON now lies about the weights
    (tmp_path / "ck.json").write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match="do not fit|has shape"):
        load_checkpoint(tmp_path / "ck")
