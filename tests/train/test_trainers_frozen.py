"""Every trainer's arithmetic is frozen: a refactor of the trainers (issue 27: shared
optimiser / data sub-configs, loops cut into named stages) must train exactly as before.

Each trainer runs a few real steps on tiny models from a *flat* config mapping (the layout of
the YAML files in configs/ and of the configs recorded in checkpoint cards before issue 27),
one torch thread (restored afterwards); the test compares the logged losses and the saved
EMA weights (per tensor: sum and sum of absolute values, float64) with
``tests/fixtures/frozen/trainers.safetensors``, written from the trainers as they stood before
the refactor. A deliberate change rewrites it with
``GESCO_UPDATE_FROZEN=1 python -m pytest tests/train/test_trainers_frozen.py``.

Tolerance: on one machine the runs are bitwise reproducible (the refactor was checked to give
max |diff| 0); :data:`RTOL` = 1e-5 allows another CPU's convolution kernels to round
differently over the few optimiser steps, while a changed learning rate, schedule, clipping,
EMA or loss moves the weights by far more (one AdamW step moves each weight by ~lr = 1e-4 of a
unit-scale tensor sum).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

FROZEN = Path(__file__).resolve().parents[1] / "fixtures" / "frozen" / "trainers.safetensors"
RTOL = 1e-5
TINY_UNET = {"label_channels": 36, "base_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1,
             "attention_ds": [2], "head_channels": 8, "spade_hidden": 8, "num_groups": 4}


def _fingerprint(state: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per tensor (sorted by name): sum and sum of absolute values, float64."""
    return torch.tensor([f(state[k].double()).item() for k in sorted(state) if state[k].is_floating_point()
                         for f in (torch.sum, lambda v: v.abs().sum())], dtype=torch.float64)


def _losses(path: Path, key: str = "loss") -> torch.Tensor:
    return torch.tensor([json.loads(line)[key] for line in path.read_text().splitlines()], dtype=torch.float64)


def _diffusion(tmp: Path) -> dict[str, torch.Tensor]:
    from gesco.train.diffusion import DiffusionTrainConfig, train_diffusion

    config = DiffusionTrainConfig.from_dict({
        "height": 16, "width": 32, "batch_size": 2, "train_size": 64, "steps": 3, "lr": 1e-3, "warmup_steps": 1,
        "lr_final_frac": 0.5, "weight_decay": 0.01, "grad_clip": 0.5, "ema_decay": 0.9, "noise_draws": 2,
        "mse_weighting": "min-snr", "checkpoint_every": 2, "log_every": 1, "threads": 1, "device": "cpu",
        "unet": TINY_UNET, "out_dir": str(tmp / "diffusion"),
    })
    result = train_diffusion(config, progress=False)
    return {"diffusion/loss": _losses(tmp / "diffusion" / "train_log.jsonl"),
            "diffusion/ema": _fingerprint(load_file(str(result.checkpoint)))}


def _distill(tmp: Path) -> dict[str, torch.Tensor]:
    from gesco.diffusion.checkpoint import ModelCard, save_checkpoint
    from gesco.diffusion.gaussian import DiffusionConfig
    from gesco.diffusion.unet import SpadeUNet, UNetConfig
    from gesco.train.distill import DistillConfig, train_distill

    unet = UNetConfig.from_dict(TINY_UNET)
    torch.manual_seed(0)
    teacher = SpadeUNet(unet)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.02 * torch.randn_like(p))
    save_checkpoint(tmp / "teacher", teacher, ModelCard(unet=unet, diffusion=DiffusionConfig(), resolution=(16, 32),
                                                           training={"steps": 5}))
    config = DistillConfig.from_dict({
        "teacher": str(tmp / "teacher"), "base_steps": 4, "rounds": 1, "guidance_round_steps": 2,
        "steps_per_round": 2, "batch_size": 1, "noise_draws": 2, "train_size": 8, "lr": 1e-3, "warmup_steps": 1,
        "weight_decay": 0.01, "grad_clip": 0.5, "ema_decay": 0.9, "device": "cpu", "log_every": 1,
        "out_dir": str(tmp / "distill"),
    })
    result = train_distill(config, progress=False)
    out = {"distill/loss": _losses(tmp / "distill" / "distill_log.jsonl")}
    for r in result.rounds:
        out[f"distill/{Path(r).stem}"] = _fingerprint(load_file(str(r)))
    return out


def _segmenter(tmp: Path) -> dict[str, torch.Tensor]:
    from gesco.segment.train import SegmenterTrainConfig, train_segmenter

    config = SegmenterTrainConfig.from_dict({
        "pool_size": 6, "monitor_size": 2, "eval_size": 0, "batch_size": 3, "height": 32, "width": 64,
        "steps": 3, "checkpoint_every": 2, "log_every": 1, "lr": 1e-2, "warmup_steps": 1, "lr_final_frac": 0.5,
        "weight_decay": 0.01, "ema_decay": 0.5, "class_weight_power": 0.5,
        "model": {"widths": [8, 16], "stem_convs": 1, "context_dilations": [1]}, "out_dir": str(tmp / "segmenter"),
    })
    path = train_segmenter(config, progress=False)
    return {"segmenter/loss": _losses(tmp / "segmenter" / "train_log.jsonl"),
            "segmenter/ema": _fingerprint(load_file(str(path)))}


@pytest.fixture(scope="module")
def computed(tmp_path_factory) -> dict[str, torch.Tensor]:
    tmp = tmp_path_factory.mktemp("frozen-trainers")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {**_diffusion(tmp), **_distill(tmp), **_segmenter(tmp)}
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def frozen(computed) -> dict[str, torch.Tensor]:
    if os.environ.get("GESCO_UPDATE_FROZEN") == "1":
        save_file({k: v.contiguous() for k, v in computed.items()}, str(FROZEN))
    return load_file(str(FROZEN))


def test_every_trainer_trains_as_before(computed, frozen):
    assert sorted(computed) == sorted(frozen)
    for key, want in frozen.items():
        got = computed[key]
        assert got.shape == want.shape, key
        assert torch.allclose(got, want, rtol=RTOL, atol=1e-9), (key, (got - want).abs().max().item())
