"""Smoke test of bench/bench_student.py on tiny random checkpoints, so the benchmark cannot rot."""

from __future__ import annotations

import dataclasses
import json

import torch

from gesco.diffusion.checkpoint import ModelCard, save_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig
from gesco.diffusion.unet import SpadeUNet, UNetConfig


def test_bench_student_times_every_configuration_and_writes_ratios(tmp_path, load_script):
    mod = load_script("bench/bench_student.py")
    unet = UNetConfig(label_channels=36, base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(),
                      head_channels=8, spade_hidden=8, num_groups=8)
    torch.manual_seed(0)
    card = ModelCard(unet=unet, diffusion=DiffusionConfig(), resolution=(16, 32))
    save_checkpoint(tmp_path / "teacher", SpadeUNet(unet), card)
    record = {"steps": 1000, "guidance_scale": 2.0, "parametrisation": "eps", "teacher": "t",
              "samplers": ["ddim", "dpmpp-2m", "dpmpp-2m-sde", "dpmpp-2m-sde-ode-mean"]}
    save_checkpoint(tmp_path / "student", SpadeUNet(unet), dataclasses.replace(card, distilled=record))
    out = tmp_path / "student.json"
    assert mod.main(["--teacher", str(tmp_path / "teacher"), "--student", str(tmp_path / "student"),
                     "--repeats", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["configs"]
    assert list(rows) == [c[0] for c in mod.CONFIGS] and result["resolution"] == [16, 32]
    assert rows[mod.CONFIGS[0][0]]["ratio_to_default"] == 1.0
    assert all(r["median_s"] > 0 and len(r["runs_s"]) == 1 for r in rows.values())
