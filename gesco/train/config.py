"""The sub-configs every trainer shares: the optimiser, the training data and the run.

The diffusion trainer, the distillation and the segmenter trainer each hold an
:class:`OptimiserConfig` (field ``optim``), a :class:`DataConfig` (field ``dataset``) and a
:class:`RunConfig` (field ``run``: output folder, seed, device, threads, cadences), with their
own defaults. Configs written before these existed kept the fields flat (``lr: 4.0e-4``,
``data: synthetic``, ``out_dir: runs/x``); :data:`MOVED_FIELDS` reads them into their new place,
so the YAML files of older checkouts and the configs recorded in older checkpoint cards still
load (:attr:`gesco.config_base.ConfigBase.moved_fields`), and ``--set lr=...`` /
``--set out_dir=...`` still work.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import torch

from gesco.config_base import ConfigBase
from gesco.train.run import TrainingRun
from gesco.train.utils import lr_at


@dataclass
class OptimiserConfig(ConfigBase):
    """AdamW with warm-up and a decaying learning rate, gradient clipping and an EMA of the weights.

    Attributes:
        lr: peak learning rate.
        lr_schedule: ``"cosine"`` or ``"constant"`` after the warm-up (:func:`~gesco.train.utils.lr_at`).
        lr_final_frac: the learning rate at the end, as a fraction of ``lr``.
        warmup_steps: linear warm-up from 0.
        weight_decay: AdamW's decoupled weight decay.
        grad_clip: the gradients' global norm is clipped to this (``None``: not clipped).
        ema_decay: decay of the exponential moving average of the weights (with warm-up), the
            weights a trainer saves.
    """

    config_name: ClassVar[str] = "optimiser config"

    lr: float = 1e-4
    lr_schedule: str = "cosine"
    lr_final_frac: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float = 0.9999

    def optimizer(self, params) -> torch.optim.AdamW:
        """AdamW over ``params`` at ``lr`` with ``weight_decay``."""
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)

    def lr_at(self, step: int, total_steps: int, progress: float | None = None) -> float:
        """The learning rate of ``step`` of ``total_steps`` (``progress``: a time budget's spent
        fraction, which then drives the decay; :func:`~gesco.train.utils.lr_at`)."""
        return lr_at(step, self.lr, self.warmup_steps, total_steps, self.lr_schedule, self.lr_final_frac,
                     progress=progress)


@dataclass
class DataConfig(ConfigBase):
    """Where the training scenes come from.

    Attributes:
        name: ``"synthetic"`` (the built-in street scenes, rendered on the fly) or a data set
            of :func:`gesco.data.build_dataset` (``"cityscapes"``, ...).
        root: the data set's folder on disk (not used by ``"synthetic"``).
    """

    config_name: ClassVar[str] = "data config"

    name: str = "synthetic"
    root: str | None = None

    def train_set(self, height: int, width: int, synthetic_size: int):
        """The training split at ``height x width``: ``synthetic_size`` synthetic scenes, or the
        real data set's train split with random horizontal flips."""
        if self.name == "synthetic":
            from gesco.data.synthetic import SyntheticScenes

            return SyntheticScenes(split="train", size=synthetic_size, height=height, width=width)
        from gesco.data import build_dataset

        return build_dataset(self.name, self.root, "train", height, width, hflip=True)


@dataclass
class RunConfig(ConfigBase):
    """Where a training run writes, how often, and on what (nothing here changes what is learnt
    except ``seed``, which fixes the initial weights and every draw of the run).

    Attributes:
        out_dir: the run's folder: resumable state, ``train_log.jsonl``, checkpoints.
        seed: the run's seed (initial weights, scenes, noise; each trainer derives its streams from it).
        checkpoint_every: steps between saved states (the last step always saves).
        log_every: steps between log records (the last step always logs).
        device: ``"auto"`` (CUDA when available), ``"cuda"``, ``"cpu"``, ... (:func:`gesco.devices.resolve_device`).
        threads: CPU threads for torch (``None``: torch's default).
    """

    config_name: ClassVar[str] = "run config"

    out_dir: str = "runs/train"
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 10
    device: str = "auto"
    threads: int | None = None

    def training_run(self, steps: int, local_rank: int = 0, is_main: bool = True) -> TrainingRun:
        """The run's folder, device and cadences for ``steps`` steps (:class:`~gesco.train.run.TrainingRun`;
        sets the torch threads and creates the folder)."""
        return TrainingRun(self.out_dir, steps, self.log_every, self.checkpoint_every, self.device, self.threads,
                           local_rank, is_main)


#: The fields of :class:`RunConfig` (flat in the configs written before it).
RUN_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RunConfig))

#: The flat keys of the configs written before the sub-configs, and where they live now.
MOVED_FIELDS: dict[str, str] = {
    **{k: f"optim.{k}" for k in ("lr", "lr_schedule", "lr_final_frac", "warmup_steps", "weight_decay", "grad_clip",
                                 "ema_decay")},
    "data": "dataset.name",
    "data_root": "dataset.root",
    **{k: f"run.{k}" for k in RUN_FIELDS},
}
