"""scripts/resume_state_from_checkpoint.py: a state rebuilt from an EMA checkpoint makes the
trainer resume at the checkpoint's step, from its weights, with its wall time carried on."""

import json

import pytest
import torch
from safetensors.torch import load_file

from gesco.diffusion.checkpoint import load_checkpoint
from gesco.train.diffusion import DiffusionTrainConfig, train_diffusion

TINY = {
    "height": 16, "width": 32, "batch_size": 2, "train_size": 64, "warmup_steps": 1, "checkpoint_every": 2,
    "log_every": 1, "threads": 1,
    "unet": {"label_channels": 36, "base_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1,
             "attention_ds": [2], "head_channels": 8, "spade_hidden": 8, "num_groups": 4},
}


def test_a_rebuilt_state_resumes_the_run_at_the_checkpoints_step_and_weights(tmp_path, load_script):
    first = train_diffusion(DiffusionTrainConfig.from_dict({**TINY, "steps": 2, "out_dir": str(tmp_path / "a")}),
                            progress=False)
    _, src_card = load_checkpoint(first.checkpoint)
    script = load_script("scripts/resume_state_from_checkpoint.py")
    out = tmp_path / "b"
    assert script.main([str(first.checkpoint), "--out-dir", str(out)]) == 0
    meta = json.loads((out / "state.json").read_text())
    assert meta["step"] == 2 and meta["ema_updates"] == 2 and meta["adamw_moments"] == "fresh"
    assert meta["wall_time_s"] == src_card.training["wall_time_s"]
    # lr 0: the resumed model cannot move, so its EMA checkpoint must be the source's weights;
    # the log starts at step 3 and the wall time goes on from the source's
    resumed = train_diffusion(DiffusionTrainConfig.from_dict({**TINY, "steps": 3, "lr": 0.0, "out_dir": str(out)}),
                              progress=False)
    assert resumed.steps == 3
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [3]
    a, b = load_file(str(first.checkpoint)), load_file(str(resumed.checkpoint))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
    _, card = load_checkpoint(resumed.checkpoint)
    assert card.training["steps"] == 3 and card.training["wall_time_s"] >= src_card.training["wall_time_s"]


def test_an_existing_state_is_not_overwritten_without_force(tmp_path, load_script):
    first = train_diffusion(DiffusionTrainConfig.from_dict({**TINY, "steps": 2, "out_dir": str(tmp_path / "a")}),
                            progress=False)
    script = load_script("scripts/resume_state_from_checkpoint.py")
    before = (tmp_path / "a" / "state.json").read_text()
    with pytest.raises(ValueError, match="state.json exists"):
        script.make_state(str(first.checkpoint), tmp_path / "a")
    assert (tmp_path / "a" / "state.json").read_text() == before
    assert script.make_state(str(first.checkpoint), tmp_path / "a", force=True)["step"] == 2


def test_a_card_without_a_training_record_is_refused(tmp_path, load_script):
    first = train_diffusion(DiffusionTrainConfig.from_dict({**TINY, "steps": 1, "out_dir": str(tmp_path / "a")}),
                            progress=False)
    card_path = first.checkpoint.with_suffix(".json")
    card = json.loads(card_path.read_text())
    del card["training"]["config"]
    card_path.write_text(json.dumps(card))
    script = load_script("scripts/resume_state_from_checkpoint.py")
    with pytest.raises(ValueError, match="no training.config"):
        script.make_state(str(first.checkpoint), tmp_path / "b")
    assert not (tmp_path / "b").exists()
