import json
import time

import torch

from gesco.train.run import StepTimer, TrainingRun, set_lr
from gesco.train.utils import EMA


def test_cadence_log_and_fresh_resume(tmp_path):
    run = TrainingRun(tmp_path / "r", steps=25, log_every=10, checkpoint_every=20, device="cpu")
    assert run.out.is_dir() and run.torch_device == torch.device("cpu")
    assert [s for s in range(1, 26) if run.log_due(s)] == [10, 20, 25]
    assert [s for s in range(1, 26) if run.checkpoint_due(s)] == [20, 25]
    model = torch.nn.Linear(2, 2)
    ema, opt = EMA(model), torch.optim.AdamW(model.parameters(), lr=1.0)
    assert run.resume(model, ema, opt) == (0, 0.0)  # nothing saved yet
    run.log({"step": 1})
    assert json.loads(run.log_path.read_text()) == {"step": 1}
    set_lr(opt, 0.25)
    assert opt.param_groups[0]["lr"] == 0.25


def test_state_round_trip_and_disabled_resume(tmp_path):
    run = TrainingRun(tmp_path, steps=5, log_every=1, checkpoint_every=1, device="cpu")
    model = torch.nn.Linear(2, 2)
    ema, opt = EMA(model), torch.optim.AdamW(model.parameters())
    run.save_state(model, ema, opt, step=3, wall_s=1.5)
    other = torch.nn.Linear(2, 2)
    ema2, opt2 = EMA(other), torch.optim.AdamW(other.parameters())
    assert run.resume(other, ema2, opt2, enabled=False) == (0, 0.0)
    assert run.resume(other, ema2, opt2) == (3, 1.5)
    assert torch.equal(other.weight, model.weight)


def test_not_main_writes_nothing(tmp_path):
    run = TrainingRun(tmp_path, steps=5, log_every=1, checkpoint_every=1, device="cpu", is_main=False)
    model = torch.nn.Linear(2, 2)
    run.log({"step": 1})
    run.save_state(model, EMA(model), torch.optim.AdamW(model.parameters()), 1, 0.1)
    assert not run.log_path.exists() and not run.state_path.with_suffix(".json").exists()
    assert run.progress_bar(True, 0, "x") is None


def test_step_timer_averages_per_step():
    timer = StepTimer("data_s", "net_s")
    timer.add(data_s=1.0, net_s=3.0)
    timer.add(data_s=3.0, net_s=5.0)
    time.sleep(0.01)
    avg = timer.averages()
    assert avg["data_s"] == 2.0 and avg["net_s"] == 4.0 and avg["s_per_step"] > 0
    assert timer.averages()["data_s"] == 0.0  # starts over
