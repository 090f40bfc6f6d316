"""``gesco train segmenter``: a few steps on tiny data through the CLI, resume, augmentations."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gesco.cli import build_parser
from gesco.errors import GescoInputError
from gesco.segment.augment import AugmentConfig, augment_batch, gaussian_blur
from gesco.segment.checkpoint import read_card
from gesco.segment.train import SegmenterTrainConfig, class_weights, run_cli

TINY = [
    "pool_size=6", "monitor_size=2", "eval_size=2", "eval_split=val", "batch_size=3",
    "height=32", "width=64", "checkpoint_every=2", "log_every=1", "lr_schedule=constant", "warmup_steps=0",
    "model.widths=[8,16]", "model.stem_convs=1", "model.context_dilations=[1]",
]


def _run(out, steps: int, resume: bool = True, extra=()) -> int:
    sets = TINY + [f"out_dir={out}", f"steps={steps}", *extra]
    args = argparse.Namespace(config=None, overrides=sets, no_resume=not resume, no_progress=True)
    return run_cli(args)


def test_cli_is_registered(monkeypatch):
    args = build_parser().parse_args(["train", "segmenter", "--set", "steps=1", "--no-resume"])
    assert args.overrides == ["steps=1"] and args.no_resume
    # the parser is built without importing the trainer; its handler hands over to run_cli
    import gesco.segment.train as trainer

    monkeypatch.setattr(trainer, "run_cli", lambda a: 17 if a is args else -1)
    assert args.handler(args) == 17


def test_train_steps_checkpoint_and_exact_resume(tmp_path, capsys):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _run(straight, 4, resume=False, extra=[f"export_to={tmp_path / 'exported'}"]) == 0
    card = read_card(straight / "segmenter")
    assert card.training["steps"] == 4 and card.resolution == (32, 64)
    assert card.evaluation["split"] == "val" and card.evaluation["scenes"] == 2
    assert 0.0 <= card.evaluation["miou"] <= 1.0 and set(card.evaluation["robustness"]) == {"blur_sigma1.0", "noise_std0.1"}
    assert read_card(tmp_path / "exported").training["steps"] == 4
    log = [json.loads(line) for line in (straight / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4] and "val_miou_ema" in log[1]

    _run(split, 2, resume=False)
    capsys.readouterr()
    _run(split, 4, resume=True)
    assert "resumed from" in capsys.readouterr().out
    a = load_file(str(straight / "segmenter.safetensors"))
    b = load_file(str(split / "segmenter.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_bad_config_is_a_named_error(tmp_path):
    with pytest.raises(GescoInputError, match="unknown"):
        _run(tmp_path, 1, extra=["learning_rate=1"])
    with pytest.raises(GescoInputError, match="multiples"):
        _run(tmp_path, 1, extra=["height=31"])
    with pytest.raises(ValueError, match="unknown"):
        SegmenterTrainConfig.from_dict({"augment": {"jpeg": 1}})


def test_augment_batch_keeps_labels_aligned():
    g = torch.Generator().manual_seed(0)
    labels = torch.zeros(4, 32, 64, dtype=torch.long)
    labels[:, :, 32:] = 7
    images = torch.where(labels[:, None] == 7, 1.0, -1.0).expand(4, 3, 32, 64).clone()
    cfg = AugmentConfig(brightness=0, contrast=0, saturation=0, channel_gain=0, blur_p=0, noise_p=0)
    x, y = augment_batch(images, labels, cfg, g, crop_width=32)
    assert x.shape == (4, 3, 32, 32) and y.shape == (4, 32, 32) and y.dtype == torch.long
    assert set(torch.unique(y).tolist()) <= {0, 7}
    bright = x.mean(1) > 0  # geometric changes move image and labels together
    assert ((bright == (y == 7)).float().mean() > 0.97)
    x2, _ = augment_batch(images, labels, AugmentConfig(), torch.Generator().manual_seed(1))
    assert x2.min() >= -1 and x2.max() <= 1 and not torch.equal(x2, images)


def test_gaussian_blur_preserves_constants_and_smooths_edges():
    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.0), flat)
    step = torch.zeros(1, 1, 16, 16)
    step[..., 8:] = 1
    out = gaussian_blur(step, 1.0)
    assert 0.1 < float(out[0, 0, 0, 7]) < 0.5 and 0.5 < float(out[0, 0, 0, 8]) < 0.9


def test_class_weights():
    labels = np.array([7] * 90 + [24] * 10, np.uint8)
    assert class_weights(labels, 35, 0.0) is None
    w = class_weights(labels, 35, 0.5)
    assert w.shape == (35,) and w[24] > 1 > w[7] and w[0] == 1
