"""Training loop: a few real steps, resume, and DDP replicas staying identical."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from gesco.diffusion.checkpoint import load_checkpoint
from gesco.diffusion.gaussian import GaussianDiffusion
from gesco.semantics.noisy import NoisyMapsConfig
from gesco.train.data import StepBatches, clean_batches
from gesco.train.diffusion import DiffusionTrainConfig, conditioning_for_training, train_diffusion, training_inputs

TINY = {
    "height": 16,
    "width": 32,
    "batch_size": 2,
    "train_size": 64,
    "warmup_steps": 1,
    "checkpoint_every": 2,
    "log_every": 1,
    "threads": 1,
    "unet": {
        "label_channels": 36,
        "base_channels": 8,
        "channel_mult": [1, 2],
        "num_res_blocks": 1,
        "attention_ds": [2],
        "head_channels": 8,
        "spade_hidden": 8,
        "num_groups": 4,
    },
}


def test_train_and_resume(tmp_path):
    cfg = DiffusionTrainConfig.from_dict({**TINY, "steps": 2, "out_dir": str(tmp_path)})
    r1 = train_diffusion(cfg, progress=False)
    assert r1.steps == 2
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in log] == [1, 2]
    assert all(torch.isfinite(torch.tensor(rec["loss"])) for rec in log)
    model, card = load_checkpoint(r1.checkpoint)
    assert card.training["steps"] == 2 and card.conditioning["noisy_training"]["enabled"]
    # resume continues from step 2 and reaches 4
    cfg4 = DiffusionTrainConfig.from_dict({**TINY, "steps": 4, "out_dir": str(tmp_path)})
    r2 = train_diffusion(cfg4, progress=False)
    assert r2.steps == 4
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in log] == [1, 2, 3, 4]


def test_conditioning_drop_and_noise():
    cond = torch.zeros(64, 36, 8, 8)
    cond[:, 7] = 1
    cfg = DiffusionTrainConfig(p_uncond=0.5, noisy=NoisyMapsConfig(psnrs_db=(1.0,), weights=(1.0,), fds=False))
    y = conditioning_for_training(cond, torch.zeros(64, dtype=torch.bool), cfg, torch.Generator().manual_seed(0))
    dropped = (y.flatten(1).abs().sum(1) == 0).float().mean().item()
    assert 0.3 < dropped < 0.7  # p_uncond = 0.5 over 64 samples
    kept = y[y.flatten(1).abs().sum(1) > 0]
    assert (kept[:, 8:] == 0).all()  # absent classes (and the absent edge map) stay exact zeros
    assert not torch.equal(kept[:, 7], cond[: len(kept), 7])  # the present map got noise


def test_dataloader_workers_give_the_same_run(tmp_path):
    """Workers render the clean batches; the corruption and draws stay in the trainer: same losses, same weights."""
    runs = {}
    for workers in (0, 2):
        cfg = DiffusionTrainConfig.from_dict(
            {**TINY, "steps": 3, "num_workers": workers, "noise_draws": 2, "out_dir": str(tmp_path / f"w{workers}")}
        )
        r = train_diffusion(cfg, progress=False)
        log = [json.loads(line) for line in (tmp_path / f"w{workers}" / "train_log.jsonl").read_text().splitlines()]
        runs[workers] = (r.model.state_dict(), log)
    (w0, log0), (w2, log2) = runs[0], runs[2]
    assert [rec["loss"] for rec in log0] == [rec["loss"] for rec in log2]
    for k in w0:
        assert torch.equal(w0[k], w2[k]), k
    for rec in log0 + log2:  # the s/step breakdown
        assert rec["data_s"] >= rec["wait_s"] >= 0 and rec["net_s"] > 0


def test_clean_batches_are_a_function_of_the_step():
    from gesco.data.synthetic import SyntheticScenes
    from gesco.semantics.classes import get_class_space

    source = StepBatches(SyntheticScenes(size=64, height=16, width=32), get_class_space("cityscapes"), batch_size=2)
    assert source.indices(3) == [6, 7]
    resumed = next(clean_batches(source, 3, 5, num_workers=1))  # a run resumed at step 3
    direct = list(clean_batches(source, 0, 5))[3]
    for k in direct:
        assert torch.equal(resumed[k], direct[k]), k
    assert direct["cond"].dtype == torch.float32 and set(direct["cond"].unique().tolist()) <= {0.0, 1.0}


def test_noise_draws_repeat_each_scene_with_independent_draws():
    cfg = DiffusionTrainConfig.from_dict({**TINY, "noise_draws": 3, "p_uncond": 0.0})
    b, h, w = 2, 16, 32
    cond = torch.zeros(b, 36, h, w)
    cond[:, 7] = 1
    batch = {"image": torch.rand(b, 3, h, w) * 2 - 1, "cond": cond, "has_edges": torch.zeros(b, dtype=torch.bool)}
    x0, y, t, noise = training_inputs(
        batch, cfg, GaussianDiffusion(cfg.diffusion), torch.Generator().manual_seed(0), torch.device("cpu")
    )
    assert x0.shape == noise.shape == (6, 3, h, w) and y.shape == (6, 36, h, w) and t.shape == (6,)
    for i in range(b):  # the three copies of a scene: same image, their own maps, t and eps
        copies = slice(3 * i, 3 * i + 3)
        assert all(torch.equal(x0[3 * i], x) for x in x0[copies])
        assert len({tuple(n.flatten()[:8].tolist()) for n in noise[copies]}) == 3
        assert len({tuple(m[7].flatten()[:8].tolist()) for m in y[copies]}) > 1  # PSNR 100 maps may repeat
    assert len(set(t.tolist())) > 1


DDP_SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    from safetensors.torch import save_file
    from gesco.train.diffusion import DiffusionTrainConfig, train_diffusion
    cfg = DiffusionTrainConfig.from_dict(eval(sys.argv[1]))
    r = train_diffusion(cfg, progress=False)
    rank = int(os.environ["RANK"])
    save_file({k: v.contiguous() for k, v in r.model.state_dict().items()}, os.path.join(cfg.run.out_dir, f"rank{rank}.safetensors"))
    """
)


@pytest.mark.slow  # 11-13 s (two torchrun processes); .ci/run runs the slow tests after the default suite
def test_ddp_two_processes_keep_identical_weights(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    cfg = {**TINY, "steps": 3, "out_dir": str(tmp_path / "run"), "checkpoint_every": 100}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), repr(cfg)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = load_file(str(tmp_path / "run" / "rank0.safetensors"))
    b = load_file(str(tmp_path / "run" / "rank1.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # and training changed them (the check is not trivially true)
    torch.manual_seed(0)
    from gesco.diffusion.unet import SpadeUNet, UNetConfig

    init = SpadeUNet(UNetConfig.from_dict(TINY["unet"])).state_dict()
    assert any(not torch.equal(init[k], a[k]) for k in a)


def test_cli_refuses_a_bad_config(tmp_path, capsys):
    from gesco.cli import main

    assert main(["train", "diffusion", "--set", "nonsense=1", "--set", f"out_dir={tmp_path}"]) == 2
    assert "unknown training config fields ['nonsense']" in capsys.readouterr().err
    assert main(["train", "diffusion", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["train", "segmenter", "--set", "steps"]) == 2
    assert "key.sub=value" in capsys.readouterr().err


def test_init_from_starts_at_the_checkpoint_weights(tmp_path):
    first = train_diffusion(DiffusionTrainConfig.from_dict({**TINY, "steps": 2, "out_dir": str(tmp_path / "a")}), progress=False)
    # lr 0: the warm-started model cannot move, so its EMA checkpoint must equal the source
    cfg = DiffusionTrainConfig.from_dict(
        {**TINY, "steps": 1, "lr": 0.0, "init_from": str(first.checkpoint), "out_dir": str(tmp_path / "b")}
    )
    second = train_diffusion(cfg, progress=False)
    a, b = load_file(str(first.checkpoint)), load_file(str(second.checkpoint))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
    _, card = load_checkpoint(second.checkpoint)
    assert card.training["config"]["init_from"] == str(first.checkpoint)


def test_init_from_refuses_another_architecture(tmp_path):
    from gesco.errors import CheckpointError

    first = train_diffusion(DiffusionTrainConfig.from_dict({**TINY, "steps": 1, "out_dir": str(tmp_path / "a")}), progress=False)
    other = {**TINY["unet"], "base_channels": 16}
    cfg = DiffusionTrainConfig.from_dict(
        {**TINY, "unet": other, "steps": 1, "init_from": str(first.checkpoint), "out_dir": str(tmp_path / "b")}
    )
    with pytest.raises(CheckpointError, match="base_channels"):
        train_diffusion(cfg, progress=False)


def test_warm_start_into_a_mean_path_trains_only_the_chosen_prefixes(tmp_path):
    """The colour fix's recipe: the checkpoint's weights, a zero-initialised mean path, the rest frozen."""
    first = train_diffusion(DiffusionTrainConfig.from_dict({**TINY, "steps": 2, "out_dir": str(tmp_path / "a")}), progress=False)
    cfg = DiffusionTrainConfig.from_dict({
        **TINY, "steps": 3, "lr": 1e-2, "ema_decay": 0.0, "init_from": str(first.checkpoint), "out_dir": str(tmp_path / "b"),
        "unet": {**TINY["unet"], "mean_skip": True, "num_groups": 2}, "trainable": ["mean_skip.", "mean_prior."],
        "multiscale_loss": True, "time_budget_s": 600.0,
    })
    second = train_diffusion(cfg, progress=False)
    a, b = load_file(str(first.checkpoint)), load_file(str(second.checkpoint))
    assert set(b) - set(a) == {"mean_skip.weight", "mean_skip.bias", "mean_prior.weight", "mean_prior.bias"}
    for k in a:  # frozen: unchanged
        torch.testing.assert_close(a[k], b[k], msg=k)
    assert float(b["mean_skip.bias"].abs().max()) > 0  # the new path was trained from zero
    _, card = load_checkpoint(second.checkpoint)
    assert card.unet.mean_skip and card.unet.num_groups == 2


def test_trainable_prefixes_matching_nothing_are_refused(tmp_path):
    cfg = DiffusionTrainConfig.from_dict({**TINY, "steps": 1, "trainable": ["no_such_layer."], "out_dir": str(tmp_path)})
    with pytest.raises(ValueError, match="match no parameter"):
        train_diffusion(cfg, progress=False)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("trainable", "mean_skip.", "list of parameter-name prefixes"),  # a string would match by its letters
    ("trainable", [], "list of parameter-name prefixes"),
    ("noise_draws", 0, "noise_draws must be >= 1"),
    ("num_workers", -1, "num_workers must be >= 0"),
    ("t_range", [5, 5], "t_range must be"),
    ("t_range", [0, 1001], "t_range must be"),
    ("t_range", [-1, 10], "t_range must be"),
    ("t_range", [0.5, 10], "t_range must be"),
    ("t_range", [0, 10, 20], "t_range must be"),
])
def test_bad_trainer_settings_are_refused_before_training(tmp_path, field, value, message):
    cfg = DiffusionTrainConfig.from_dict({**TINY, "steps": 1, field: value, "out_dir": str(tmp_path / "run")})
    with pytest.raises(ValueError, match=message):
        train_diffusion(cfg, progress=False)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_time_budget_stops_the_run_and_drives_the_schedule(tmp_path):
    from gesco.train.utils import lr_at

    cfg = DiffusionTrainConfig.from_dict({**TINY, "steps": 10_000, "time_budget_s": 1e-6, "out_dir": str(tmp_path)})
    result = train_diffusion(cfg, progress=False)
    assert result.steps == 1  # the budget is spent after the first step, which is checkpointed
    assert (tmp_path / "ema.safetensors").exists()
    # the cosine follows the fraction of the budget spent, not the step count
    assert lr_at(500, 1.0, 0, 10_000, progress=0.5) == pytest.approx(0.55)
    assert lr_at(500, 1.0, 0, 10_000, progress=1.0) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="time_budget_s"):
        train_diffusion(DiffusionTrainConfig.from_dict({**TINY, "time_budget_s": 0, "out_dir": str(tmp_path / "z")}), progress=False)


def test_t_range_draws_the_training_time_from_the_range_only():
    """``t_range = [lo, hi]``: every ``t`` in ``lo <= t < hi`` (the small-t fine-tune of docs/grain.md)."""
    b, h, w = 4, 16, 32
    cond = torch.zeros(b, 36, h, w)
    cond[:, 7] = 1
    batch = {"image": torch.rand(b, 3, h, w) * 2 - 1, "cond": cond, "has_edges": torch.zeros(b, dtype=torch.bool)}
    cfg = DiffusionTrainConfig.from_dict({**TINY, "noise_draws": 50, "t_range": [3, 7]})
    _, _, t, _ = training_inputs(batch, cfg, GaussianDiffusion(cfg.diffusion), torch.Generator().manual_seed(0),
                                 torch.device("cpu"))
    assert set(t.tolist()) == {3, 4, 5, 6}  # 200 draws: every index of the range, none outside it
    wide = DiffusionTrainConfig.from_dict({**TINY, "noise_draws": 50})
    _, _, t_all, _ = training_inputs(batch, wide, GaussianDiffusion(wide.diffusion), torch.Generator().manual_seed(0),
                                     torch.device("cpu"))
    assert int(t_all.max()) > 100  # without it: the whole chain


def _tiny_student(tmp_path):
    """A tiny checkpoint saved with a guidance-only student's ``"distilled"`` record."""
    from gesco.diffusion.checkpoint import save_checkpoint
    from gesco.sampler_specs import GUIDANCE_ONLY_SAMPLERS

    first = train_diffusion(DiffusionTrainConfig.from_dict({**TINY, "steps": 1, "out_dir": str(tmp_path / "a")}),
                            progress=False)
    model, card = load_checkpoint(first.checkpoint)
    card.distilled = {"steps": 1000, "guidance_scale": 2.0, "parametrisation": "eps", "teacher": "t",
                      "samplers": list(GUIDANCE_ONLY_SAMPLERS)}
    card.conditioning = {**card.conditioning, "p_uncond": 0.0, "guidance_folded": 2.0}
    save_checkpoint(tmp_path / "student", model, card)
    return tmp_path / "student"


def test_a_fine_tune_of_a_student_stays_a_student(tmp_path):
    student = _tiny_student(tmp_path)
    cfg = DiffusionTrainConfig.from_dict({**TINY, "steps": 2, "p_uncond": 0.0, "t_range": [0, 200], "lr": 1e-3,
                                          "init_from": str(student), "out_dir": str(tmp_path / "ft")})
    result = train_diffusion(cfg, progress=False)
    _, card = load_checkpoint(result.checkpoint)
    _, source = load_checkpoint(student)
    assert card.distilled == source.distilled  # sampled as the student was (one pass per step)
    assert card.conditioning["guidance_folded"] == 2.0 and card.conditioning["p_uncond"] == 0.0
    assert card.training["config"]["t_range"] == [0, 200] and card.training["config"]["init_from"] == str(student)
    a, b = load_file(str(student) + ".safetensors"), load_file(str(result.checkpoint))
    assert any(not torch.equal(a[k], b[k]) for k in a)  # it was trained


def test_a_fine_tune_of_a_student_with_unconditional_drops_is_refused(tmp_path):
    student = _tiny_student(tmp_path)
    cfg = DiffusionTrainConfig.from_dict({**TINY, "steps": 1, "p_uncond": 0.2, "init_from": str(student),
                                          "out_dir": str(tmp_path / "ft")})
    with pytest.raises(ValueError, match="p_uncond=0"):
        train_diffusion(cfg, progress=False)
    assert not (tmp_path / "ft").exists()
