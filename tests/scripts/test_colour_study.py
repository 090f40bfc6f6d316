"""scripts/colour_study.py runs end to end on a tiny random-weight checkpoint (so it cannot rot)."""

import json
from pathlib import Path

import torch

from gesco.diffusion.checkpoint import ModelCard, save_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig
from gesco.diffusion.unet import SpadeUNet, UNetConfig


def test_colour_study_runs_and_reports(tmp_path, load_script):
    cfg = UNetConfig(label_channels=36, base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(),
                     head_channels=8, spade_hidden=8, num_groups=4, mean_skip=True)
    torch.manual_seed(0)
    card = ModelCard(unet=cfg, diffusion=DiffusionConfig(), class_space="cityscapes", resolution=(16, 32),
                     training={"steps": 0})
    ckpt = Path(str(save_checkpoint(tmp_path / "tiny", SpadeUNet(cfg), card))).with_suffix("")
    out = tmp_path / "out"
    study = load_script("scripts/colour_study.py")
    rc = study.main([f"tiny={ckpt}", "--scenes", "2", "--seeds", "2", "--settings", "dpmpp10-g1",
                     "--data-scenes", "4", "--out", str(out)])
    assert rc == 0
    result = json.loads((out / "colour_study.json").read_text())
    (entry,) = result["checkpoints"]
    assert [r["t"] for r in entry["dc"]] == [999, 900, 700, 500, 300]
    # zero-initialised mean path and output conv: the network ignores its input's mean
    assert all(abs(r["gain"]) < 1e-3 for r in entry["dc"])
    (row,) = entry["samples"]
    assert row["images"] == 4 and row["mean_colour_err"] > 0 and row["seed_spread"] >= 0
    assert result["path"]["max_abs_diff_png_roundtrip"] == 0 and result["path"]["max_abs_diff_tensor_roundtrip"] == 0
    assert "| tiny | dpmpp10-g1 | 4 |" in (out / "colour_study.md").read_text()
