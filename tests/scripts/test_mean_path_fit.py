"""scripts/mean_path_fit.py end to end on a small random-weight checkpoint: the fitted network's
measured mean-colour gain (colour_study's dc gain) is the Bayes-optimal one it records."""

from pathlib import Path

import pytest
import torch

from gesco.diffusion.checkpoint import ModelCard, load_checkpoint, save_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig, GaussianDiffusion
from gesco.diffusion.unet import MEAN_PATH_PREFIXES, SpadeUNet, UNetConfig
from gesco.semantics.classes import get_class_space


@pytest.mark.parametrize("teacher_has_path", [True, False], ids=["with-path", "without-path"])
def test_mean_path_fit_writes_the_bayes_gain_and_keeps_every_other_weight(tmp_path, load_script, teacher_has_path):
    # base 32: the shipped model's 128-dim time embedding, which the curves are fitted through.
    # without-path: a teacher trained with unet.mean_skip false (Table 5's CPU arms) gets the
    # layers zero-initialised, then fitted
    cfg = UNetConfig(label_channels=36, base_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(),
                     head_channels=8, spade_hidden=8, num_groups=4, mean_skip=teacher_has_path)
    torch.manual_seed(0)
    card = ModelCard(unet=cfg, diffusion=DiffusionConfig(), class_space="cityscapes", resolution=(16, 32),
                     training={"steps": 0})
    src = Path(str(save_checkpoint(tmp_path / "tiny", SpadeUNet(cfg), card))).with_suffix("")
    out = tmp_path / "fitted"
    fit = load_script("scripts/mean_path_fit.py")
    assert fit.main([str(src), "--out", str(out), "--fit-scenes", "60", "--provenance", "a tiny test net"]) == 0

    before, _ = load_checkpoint(src)
    after, new_card = load_checkpoint(out)
    record = new_card.training["mean_path_fit"]
    assert record["fit_scenes"] == 60 and record["split"] == "train" and "mean_path_fit.py" in record["command"]
    assert record["provenance"] == "a tiny test net"
    assert record["added_mean_path"] is (not teacher_has_path) and new_card.unet.mean_skip and after.mean_skip
    old, new = before.state_dict(), after.state_dict()
    assert set(new) - set(old) == ({k for k in new if k.startswith(MEAN_PATH_PREFIXES)} if not teacher_has_path else set())
    for name, b in new.items():
        changed = name not in old or not torch.equal(old[name], b)
        assert changed == name.startswith(MEAN_PATH_PREFIXES), name  # only the path changed

    for name in ("mean_skip.weight", "mean_prior.weight", "mean_skip.bias", "mean_prior.bias"):  # no -0.0: rebuilds are
        w = new[name]                                                                       # byte-identical
        assert not (torch.signbit(w) & (w == 0)).any(), name

    study = load_script("scripts/colour_study.py")
    x0, cond, labels = study.scenes(4, 16, 32, get_class_space("cityscapes"))
    rows = study.dc_gain(after.eval(), GaussianDiffusion(new_card.diffusion), x0, cond, labels)
    target = record["target_grey_gain"]  # keys are strings: the card went through JSON
    for r in rows:
        assert abs(r["gain"] - target[str(r["t"])]) < 0.03 + record["max_abs_err_G"], (r, target)


def _tiny(tmp_path, conditioning: dict) -> Path:
    cfg = UNetConfig(label_channels=36, base_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(),
                     head_channels=8, spade_hidden=8, num_groups=4, mean_skip=True)
    torch.manual_seed(0)
    card = ModelCard(unet=cfg, diffusion=DiffusionConfig(), class_space="cityscapes", resolution=(16, 32),
                     training={"steps": 0}, conditioning=conditioning)
    return Path(str(save_checkpoint(tmp_path / "tiny", SpadeUNet(cfg), card))).with_suffix("")


def test_received_maps_fit_the_prior_on_the_checkpoints_own_corruption(tmp_path, load_script):
    # the receiver reads maps after the channel and FDS; their label fractions carry more mass at
    # low PSNR than the clean ones, so the prior fitted on them differs, and the card says how
    noisy = {"enabled": True, "channel": "awgn", "psnrs_db": [1.0], "weights": [1.0], "fds": True, "fds_kernel": 3}
    src = _tiny(tmp_path, {"noisy_training": noisy})
    fit = load_script("scripts/mean_path_fit.py")
    assert fit.main([str(src), "--out", str(tmp_path / "clean"), "--fit-scenes", "40"]) == 0
    assert fit.main([str(src), "--out", str(tmp_path / "recv"), "--fit-scenes", "40", "--maps", "received"]) == 0
    clean, clean_card = load_checkpoint(tmp_path / "clean")
    recv, recv_card = load_checkpoint(tmp_path / "recv")
    rec = recv_card.training["mean_path_fit"]
    assert clean_card.training["mean_path_fit"]["maps"] == "clean"
    assert rec["maps"] == "received" and rec["maps_seed"] == 0
    assert rec["maps_corruption"]["psnrs_db"] == [1.0] and rec["maps_corruption"]["fds"] is True
    # the prior term Q (which multiplies the label fractions) is fitted to other fractions
    assert not torch.allclose(clean.mean_prior.weight, recv.mean_prior.weight)
    # the same seed gives the same bytes
    assert fit.main([str(src), "--out", str(tmp_path / "again"), "--fit-scenes", "40", "--maps", "received"]) == 0
    again, _ = load_checkpoint(tmp_path / "again")
    assert torch.equal(again.mean_prior.weight, recv.mean_prior.weight)


def test_received_maps_refuse_a_checkpoint_trained_on_clean_maps(tmp_path, load_script):
    src = _tiny(tmp_path, {"noisy_training": {"enabled": False}})
    fit = load_script("scripts/mean_path_fit.py")
    with pytest.raises(SystemExit, match="trained on clean maps"):
        fit.main([str(src), "--out", str(tmp_path / "recv"), "--fit-scenes", "20", "--maps", "received"])
