"""scripts/mean_path_fit.py end to end on a small random-weight checkpoint: the fitted network's
measured mean-colour gain (colour_study's dc gain) is the Bayes-optimal one it records."""

from pathlib import Path

import torch

from gesco.diffusion.checkpoint import ModelCard, load_checkpoint, save_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig, GaussianDiffusion
from gesco.diffusion.unet import MEAN_PATH_PREFIXES, SpadeUNet, UNetConfig
from gesco.semantics.classes import get_class_space


def test_mean_path_fit_writes_the_bayes_gain_and_keeps_every_other_weight(tmp_path, load_script):
    # base 32: the shipped model's 128-dim time embedding, which the curves are fitted through
    cfg = UNetConfig(label_channels=36, base_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(),
                     head_channels=8, spade_hidden=8, num_groups=4, mean_skip=True)
    torch.manual_seed(0)
    card = ModelCard(unet=cfg, diffusion=DiffusionConfig(), class_space="cityscapes", resolution=(16, 32),
                     training={"steps": 0})
    src = Path(str(save_checkpoint(tmp_path / "tiny", SpadeUNet(cfg), card))).with_suffix("")
    out = tmp_path / "fitted"
    fit = load_script("scripts/mean_path_fit.py")
    assert fit.main([str(src), "--out", str(out), "--fit-scenes", "60"]) == 0

    before, _ = load_checkpoint(src)
    after, new_card = load_checkpoint(out)
    record = new_card.training["mean_path_fit"]
    assert record["fit_scenes"] == 60 and record["split"] == "train" and "mean_path_fit.py" in record["command"]
    for (name, a), (_, b) in zip(before.state_dict().items(), after.state_dict().items(), strict=True):
        assert torch.equal(a, b) != name.startswith(MEAN_PATH_PREFIXES), name  # only the path changed

    study = load_script("scripts/colour_study.py")
    x0, cond, labels = study.scenes(4, 16, 32, get_class_space("cityscapes"))
    rows = study.dc_gain(after.eval(), GaussianDiffusion(new_card.diffusion), x0, cond, labels)
    target = record["target_grey_gain"]  # keys are strings: the card went through JSON
    for r in rows:
        assert abs(r["gain"] - target[str(r["t"])]) < 0.03 + record["max_abs_err_G"], (r, target)
