"""The parts every training loop of gesco shares (diffusion model, segmenter, distillation).

A training run lives in one output folder (:class:`TrainingRun`) holding

* ``state.safetensors`` + ``state.json``: weights, EMA, AdamW moments and counters, written
  every ``checkpoint_every`` steps, from which a rerun of the same command resumes;
* ``train_log.jsonl``: one JSON record every ``log_every`` steps;
* the EMA checkpoint(s) the trainer writes with its own card.

The trainers keep their own step (what one optimisation step computes) and their card; the
set-up, resuming, the cadence of logs and checkpoints, the progress bar and the learning-rate
update are written here once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gesco.devices import resolve_device
from gesco.train.utils import EMA, load_training_state, save_training_state


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group (the schedule's value for this step)."""
    for g in optimizer.param_groups:
        g["lr"] = lr


@dataclass
class TrainingRun:
    """The output folder, device and bookkeeping of one training run.

    Args:
        out_dir: the run's folder (created).
        steps: the step count the run trains to.
        log_every, checkpoint_every: cadences in steps (the last step always logs and saves).
        device: a device setting (:func:`gesco.devices.resolve_device`).
        threads: CPU threads for torch (``None``: torch's default).
        local_rank: the process's GPU under ``torchrun``.
        is_main: whether this process writes logs, checkpoints and the progress bar.
    """

    out_dir: str | Path
    steps: int
    log_every: int
    checkpoint_every: int
    device: str | torch.device = "auto"
    threads: int | None = None
    local_rank: int = 0
    is_main: bool = True
    out: Path = field(init=False)
    torch_device: torch.device = field(init=False)

    def __post_init__(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        self.torch_device = resolve_device(self.device, self.local_rank)
        self.out = Path(self.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ files
    @property
    def state_path(self) -> Path:
        return self.out / "state"

    @property
    def log_path(self) -> Path:
        return self.out / "train_log.jsonl"

    def log(self, record: dict[str, Any]) -> None:
        """Append one record to ``train_log.jsonl`` (main process only)."""
        if self.is_main:
            with self.log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------ state
    def resume(self, model: torch.nn.Module, ema: EMA, optimizer: torch.optim.Optimizer, enabled: bool = True) -> tuple[int, float]:
        """Load the saved state into ``model``, ``ema`` and ``optimizer`` if there is one.

        Returns:
            ``(step, wall_time_s)`` to continue from; ``(0, 0.0)`` for a fresh run.
        """
        if not enabled or not self.state_path.with_suffix(".json").exists():
            return 0, 0.0
        meta = load_training_state(self.state_path, model, ema, optimizer)
        if self.is_main:
            print(f"resumed from {self.state_path} at step {int(meta['step'])}")
        return int(meta["step"]), float(meta.get("wall_time_s", 0.0))

    def save_state(self, model: torch.nn.Module, ema: EMA, optimizer: torch.optim.Optimizer, step: int, wall_s: float) -> None:
        """Write the resumable state (main process only)."""
        if self.is_main:
            save_training_state(self.state_path, model, ema, optimizer, {"step": step, "wall_time_s": wall_s})

    # ------------------------------------------------------------------ cadence
    def log_due(self, step: int) -> bool:
        return step % self.log_every == 0 or step == self.steps

    def checkpoint_due(self, step: int) -> bool:
        return step % self.checkpoint_every == 0 or step == self.steps

    def progress_bar(self, enabled: bool, initial: int, desc: str):
        """A tqdm bar from ``initial`` to ``steps`` on the main process, else ``None``."""
        if not (enabled and self.is_main):
            return None
        from tqdm import tqdm

        return tqdm(total=self.steps, initial=initial, desc=desc, dynamic_ncols=True)


class StepTimer:
    """Sums of named durations since the last log record, averaged per step on read.

    ``timer.add(data_s=..., net_s=...)`` once per step; ``timer.averages()`` returns each sum
    divided by the steps and starts over.
    """

    def __init__(self, *names: str) -> None:
        self.names = names
        self._reset()

    def _reset(self) -> None:
        self.sums = dict.fromkeys(self.names, 0.0)
        self.steps = 0
        self.since = time.perf_counter()

    def add(self, **durations: float) -> None:
        for k, v in durations.items():
            self.sums[k] += v
        self.steps += 1

    def averages(self, digits: int = 4) -> dict[str, float]:
        """Per-step means of every duration, plus ``s_per_step`` (wall clock since the last read)."""
        n = max(self.steps, 1)
        out = {k: round(v / n, digits) for k, v in self.sums.items()}
        out["s_per_step"] = round((time.perf_counter() - self.since) / n, 3)
        self._reset()
        return out
