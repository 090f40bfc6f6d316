"""The trainers' shared sub-configs (gesco.train.config): configs written before them still load.

``tests/fixtures/configs-flat/`` holds the four YAML files of configs/ as they were before the
optimiser, data and run fields moved into ``optim`` / ``dataset`` / ``run`` (issue 27); the
shipped checkpoint cards record their training configs in that flat layout too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from gesco.config import config_from_args
from gesco.errors import GescoInputError
from gesco.segment.train import SegmenterTrainConfig
from gesco.train.config import MOVED_FIELDS, RUN_FIELDS, DataConfig, OptimiserConfig, RunConfig
from gesco.train.diffusion import DiffusionTrainConfig
from gesco.train.distill import DistillConfig

REPO = Path(__file__).resolve().parents[2]
FLAT = REPO / "tests" / "fixtures" / "configs-flat"


def _class_of(name: str):
    return DistillConfig if "distill" in name else SegmenterTrainConfig if "segmenter" in name else DiffusionTrainConfig


@pytest.mark.parametrize("name", sorted(p.name for p in FLAT.glob("*.yaml")))
def test_a_flat_config_of_before_loads_as_its_nested_successor(name):
    cls = _class_of(name)
    flat = yaml.safe_load((FLAT / name).read_text())
    new = cls.from_dict(yaml.safe_load((REPO / "configs" / name).read_text()))
    old = cls.from_dict(flat)
    assert old == new
    assert old.optim.lr == flat["lr"] and old.dataset.name == flat["data"]
    assert old.optim.ema_decay == flat["ema_decay"] and old.optim.warmup_steps == flat["warmup_steps"]
    assert old.run.out_dir == flat["out_dir"] and old.run.seed == flat["seed"]
    assert old.run.checkpoint_every == flat["checkpoint_every"] and old.run.log_every == flat["log_every"]


@pytest.mark.parametrize("card", sorted(p.name for p in (REPO / "checkpoints").glob("*.json")))
def test_the_configs_recorded_in_the_shipped_cards_load(card):
    recorded = json.loads((REPO / "checkpoints" / card).read_text())["training"]["config"]
    config = _class_of("distill" if "student" in card else card).from_dict(recorded)
    for old, new in MOVED_FIELDS.items():
        if old in recorded:
            parent, key = new.split(".")
            assert getattr(getattr(config, parent), key) == recorded[old], old
    # and the new layout round-trips
    assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_a_partial_nested_config_keeps_the_trainers_own_defaults():
    seg = SegmenterTrainConfig.from_dict({"optim": {"lr": 0.5}})
    assert seg.optim == OptimiserConfig(lr=0.5, lr_final_frac=0.02, warmup_steps=50, weight_decay=1e-4,
                                        grad_clip=None, ema_decay=0.995)
    assert SegmenterTrainConfig.from_dict({"lr": 0.5}).optim == seg.optim  # the flat key, the same
    assert DistillConfig.from_dict({"ema_decay": 0.9}).optim.lr_final_frac == 0.0
    assert DiffusionTrainConfig.from_dict({"data_root": "/x"}).dataset == DataConfig(name="synthetic", root="/x")


def test_an_old_and_a_new_name_together_is_a_named_error():
    with pytest.raises(ValueError, match=r"both lr and optim\.lr"):
        DiffusionTrainConfig.from_dict({"lr": 1e-3, "optim": {"lr": 2e-3}})
    with pytest.raises(ValueError, match="unknown optimiser config fields"):
        DiffusionTrainConfig.from_dict({"optim": {"momentum": 0.9}})


@pytest.mark.parametrize(("config", "override"), [
    (REPO / "configs" / "diffusion_synthetic_64x128.yaml", "lr=2e-3"),
    (REPO / "configs" / "diffusion_synthetic_64x128.yaml", "optim.lr=2e-3"),
    (FLAT / "diffusion_synthetic_64x128.yaml", "lr=2e-3"),
    (FLAT / "diffusion_synthetic_64x128.yaml", "optim.lr=2e-3"),
])
def test_set_overrides_a_moved_field_by_either_name_in_either_layout(config, override):
    args = argparse.Namespace(config=str(config), overrides=[override, "data=cityscapes"])
    c = config_from_args(args, DiffusionTrainConfig, "training")
    assert c.optim.lr == 2e-3 and c.optim.warmup_steps == 100 and c.dataset.name == "cityscapes"


@pytest.mark.parametrize("name", sorted(p.name for p in FLAT.glob("*.yaml")))
@pytest.mark.parametrize("layout", ["configs", "flat"])
@pytest.mark.parametrize("key", ["out_dir", "run.out_dir"])
def test_set_out_dir_works_by_either_name_in_either_layout(name, layout, key, tmp_path):
    """``--set out_dir=...`` (13 times in the docs) and ``--set run.out_dir=...`` both set the run's
    folder, over the shipped configs and their flat predecessors, for every trainer; the other
    run fields keep the file's values."""
    path = (REPO / "configs" if layout == "configs" else FLAT) / name
    args = argparse.Namespace(config=str(path), overrides=[f"{key}={tmp_path}", "seed=7"])
    c = config_from_args(args, _class_of(name), "training")
    flat = yaml.safe_load((FLAT / name).read_text())
    assert c.run.out_dir == str(tmp_path) and c.run.seed == 7
    assert (c.run.checkpoint_every, c.run.log_every) == (flat["checkpoint_every"], flat["log_every"])


def test_the_run_defaults_are_each_trainers_own():
    assert set(RUN_FIELDS) <= set(MOVED_FIELDS) and all(MOVED_FIELDS[k] == f"run.{k}" for k in RUN_FIELDS)
    assert DiffusionTrainConfig().run == RunConfig(out_dir="runs/diffusion")
    assert DistillConfig().run == RunConfig(out_dir="runs/distill")
    assert SegmenterTrainConfig().run == RunConfig(out_dir="runs/segmenter", device="cpu", threads=1)
    # a partial run mapping, or one flat key, keeps the trainer's own defaults for the rest
    assert SegmenterTrainConfig.from_dict({"run": {"seed": 3}}).run.threads == 1
    assert SegmenterTrainConfig.from_dict({"log_every": 5}).run == RunConfig(
        out_dir="runs/segmenter", log_every=5, device="cpu", threads=1)
    with pytest.raises(ValueError, match=r"both out_dir and run\.out_dir"):
        DiffusionTrainConfig.from_dict({"out_dir": "a", "run": {"out_dir": "b"}})


def test_a_bad_override_is_a_named_input_error():
    args = argparse.Namespace(config=None, overrides=["optim.lr_schedul=cosine"])
    with pytest.raises(GescoInputError, match="lr_schedul"):
        config_from_args(args, SegmenterTrainConfig, "segmenter training")


def test_the_trainers_that_report_a_gradient_norm_refuse_an_unset_grad_clip(tmp_path):
    from gesco.train.diffusion import train_diffusion

    with pytest.raises(ValueError, match="optim.grad_clip must be set for diffusion training"):
        train_diffusion(DiffusionTrainConfig.from_dict({"grad_clip": None, "out_dir": str(tmp_path)}), progress=False)
    with pytest.raises(GescoInputError, match="optim.grad_clip must be set for distillation"):
        DistillConfig.from_dict({"teacher": "t", "optim": {"grad_clip": None}}).validate()
