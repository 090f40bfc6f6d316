"""Training of the segmenter: ``gesco train segmenter --config ... --set key=value``.

The training images are a *pool* loaded once at the start (for the synthetic scenes:
the first ``pool_size`` train-split scenes, rendered in memory, so the CPU renders each
scene once instead of once per step). Each step draws ``batch_size`` pool images, augments
them (:mod:`gesco.segment.augment`: zoom, crop, flip, colour, blur, noise), and minimises
the (optionally class-weighted) cross-entropy over all label ids with AdamW, warm-up and
cosine decay; an EMA of the weights is what gets saved.

Reproducible: the pool, the initial weights and every batch and augmentation are pure
functions of ``seed`` and the step, so a resumed run continues exactly where it stopped.
Every ``checkpoint_every`` steps the EMA weights are scored on ``monitor_size`` val scenes,
logged to ``<out_dir>/train_log.jsonl`` and saved with the resumable state; at the end
the EMA weights are scored on ``eval_size`` scenes of ``eval_split`` (clean, blurred,
noisy), recorded in the checkpoint, and optionally copied to ``export_to``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from gesco.config import config_from_args
from gesco.config_base import ConfigBase
from gesco.errors import GescoInputError
from gesco.segment.augment import AugmentConfig, augment_batch
from gesco.segment.checkpoint import SegmenterCard, save_checkpoint
from gesco.segment.evaluate import evaluation_record, score
from gesco.segment.model import SegmenterConfig, SegmenterNet, count_parameters
from gesco.semantics.classes import ClassSpace, get_class_space
from gesco.train.config import MOVED_FIELDS, DataConfig, OptimiserConfig, RunConfig
from gesco.train.run import set_lr
from gesco.train.utils import EMA


@dataclass
class SegmenterTrainConfig(ConfigBase):
    """Everything a segmenter training run depends on (saved into the checkpoint's record).

    ``optim``, ``dataset`` and ``run`` are the sub-configs the trainers share
    (:mod:`gesco.train.config`; ``optim.grad_clip`` is off by default here, the run is on one CPU
    thread); a flat ``lr`` / ``data`` / ``out_dir`` / ... of an older config is read into them (:data:`~gesco.train.config.MOVED_FIELDS`).
    """

    config_name: ClassVar[str] = "segmenter training config"
    moved_fields: ClassVar[dict[str, str]] = MOVED_FIELDS

    name: str = "segmenter-synthetic-64x128"
    dataset: DataConfig = field(default_factory=DataConfig)
    class_space: str = "cityscapes"
    height: int = 64
    width: int = 128
    pool_size: int = 5000
    crop_width: int | None = None
    batch_size: int = 16
    steps: int = 2000
    optim: OptimiserConfig = field(default_factory=lambda: OptimiserConfig(
        lr=3e-3, lr_final_frac=0.02, warmup_steps=50, weight_decay=1e-4, grad_clip=None, ema_decay=0.995))
    class_weight_power: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: SegmenterConfig = field(default_factory=SegmenterConfig)
    run: RunConfig = field(default_factory=lambda: RunConfig(out_dir="runs/segmenter", device="cpu", threads=1))
    monitor_size: int = 100
    eval_split: str = "test"
    eval_size: int = 500
    export_to: str | None = None

    def check(self) -> None:
        stride = self.model.stride
        if self.height % stride or self.width % stride:
            raise ValueError(f"height and width must be multiples of the model stride {stride}")
        if self.crop_width is not None and (self.crop_width % stride or not 0 < self.crop_width <= self.width):
            raise ValueError(f"crop_width must be a multiple of {stride} in (0, width], got {self.crop_width}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (BatchNorm)")


# --------------------------------------------------------------------------- data
def load_pool(data: str, root: str | None, split: str, size: int, height: int, width: int,
              progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The first ``size`` items of a data set split, in memory.

    Returns:
        ``(images uint8 (N, H, W, 3), labels uint8 (N, H, W))`` (uint16 when ids exceed 255).
    """
    from gesco.data import build_dataset

    kw = {"size": size} if data == "synthetic" else {"max_items": size}
    dataset = build_dataset(data, root, split, height, width, **kw)
    n = min(size, len(dataset))
    images = np.empty((n, height, width, 3), np.uint8)
    label_dtype = np.uint8 if dataset.class_space.num_classes <= 256 else np.uint16
    labels = np.empty((n, height, width), label_dtype)
    it = range(n)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"load {data}/{split}", dynamic_ncols=True, leave=False)
    for i in it:
        item = dataset[i]
        images[i] = ((item["image"].permute(1, 2, 0) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        labels[i] = item["label"].numpy()
    return images, labels


def class_weights(labels: np.ndarray, num_classes: int, power: float) -> torch.Tensor | None:
    """Cross-entropy weights ``(median_freq / freq_c) ** power`` over the classes present
    in ``labels`` (1 for absent ones), clipped to ``[0.1, 10]``; ``None`` when ``power == 0``."""
    if power == 0:
        return None
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=num_classes)[:num_classes].astype(np.float64)
    present = counts > 0
    freq = counts / counts.sum()
    w = np.ones(num_classes)
    w[present] = (np.median(freq[present]) / freq[present]) ** power
    return torch.tensor(np.clip(w, 0.1, 10.0), dtype=torch.float32)


def _batch(images: np.ndarray, labels: np.ndarray, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    idx = index.numpy()
    x = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    y = torch.from_numpy(labels[idx].astype(np.int64))
    return x, y


def _predict_with(model: SegmenterNet, device: torch.device):
    @torch.no_grad()
    def predict(x: torch.Tensor) -> torch.Tensor:
        return model(x.to(device)).argmax(1).cpu()

    return predict


# --------------------------------------------------------------------------- training
@dataclass
class _Pools:
    """The scenes a run holds in memory: training pool and validation monitor (uint8 arrays)."""

    images: np.ndarray
    labels: np.ndarray
    mon_images: np.ndarray
    mon_labels: np.ndarray
    seconds: float


def _load_pools(config: SegmenterTrainConfig, progress: bool) -> _Pools:
    """The first ``pool_size`` train scenes and ``monitor_size`` val scenes, and the time taken."""
    t_start = time.time()
    data, root = config.dataset.name, config.dataset.root
    images, labels = load_pool(data, root, "train", config.pool_size, config.height, config.width, progress)
    mon_images, mon_labels = load_pool(data, root, "val", config.monitor_size, config.height, config.width, progress)
    return _Pools(images, labels, mon_images, mon_labels, time.time() - t_start)


def _segmenter_step(model: SegmenterNet, ema: EMA, opt: torch.optim.Optimizer, config: SegmenterTrainConfig,
                    pools: _Pools, weights: torch.Tensor | None, gen: torch.Generator, step: int,
                    device: torch.device) -> tuple[torch.Tensor, float]:
    """One step: ``batch_size`` pool images and their augmentation drawn from ``gen`` (seeded by
    the step), weighted cross-entropy, AdamW (clipped when ``optim.grad_clip`` is set), EMA.

    Returns:
        the loss and the step's learning rate.
    """
    gen.manual_seed(config.run.seed * 1_000_003 + 7919 * step)  # batch and augmentation depend on the step only
    index = torch.randint(0, len(pools.images), (config.batch_size,), generator=gen)
    x, y = _batch(pools.images, pools.labels, index)
    x, y = augment_batch(x, y, config.augment, gen, config.crop_width)
    lr = config.optim.lr_at(step, config.steps)
    set_lr(opt, lr)
    logits = model(x.to(device))
    loss = F.cross_entropy(logits, y.to(device), weight=weights)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if config.optim.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
    opt.step()
    ema.update(model)
    return loss, lr


def _final_evaluation(config: SegmenterTrainConfig, ema_model: SegmenterNet, space: ClassSpace,
                      device: torch.device, progress: bool) -> dict:
    """The EMA weights scored on ``eval_size`` scenes of ``eval_split`` (clean, blurred, noisy);
    ``{}`` when ``eval_size`` is 0."""
    if config.eval_size <= 0:
        return {}
    ev_images, ev_labels = load_pool(config.dataset.name, config.dataset.root, config.eval_split, config.eval_size,
                                     config.height, config.width, progress)
    evaluation = evaluation_record(_predict_with(ema_model, device), ev_images, ev_labels, space,
                                   {"data": config.dataset.name, "split": config.eval_split, "scenes": len(ev_images)})
    print(f"{config.eval_split} mIoU ({len(ev_images)} scenes): {evaluation['miou']:.4f}; "
          f"robustness {evaluation['robustness']}")
    return evaluation


def _card(config: SegmenterTrainConfig, model: SegmenterNet, pools: _Pools, steps_done: int, wall: float,
          evaluation: dict | None = None) -> SegmenterCard:
    """The checkpoint's card: architecture, class space, resolution, training record, evaluation."""
    return SegmenterCard(
        model=config.model,
        class_space=config.class_space,
        resolution=(config.height, config.width),
        training={
            "steps": steps_done,
            "batch_size": config.batch_size,
            "data": config.dataset.name,
            "pool_size": len(pools.images),
            "seed": config.run.seed,
            "parameters": count_parameters(model),
            "wall_time_s": round(wall, 1),
            "pool_time_s": round(pools.seconds, 1),
            "threads": torch.get_num_threads(),
            "config": config.to_dict(),
        },
        evaluation=evaluation or {},
    )


def train_segmenter(config: SegmenterTrainConfig, resume: bool = True, progress: bool = True) -> Path:
    """Train (or resume) a segmenter; returns the path of the final (EMA) checkpoint's weights."""
    config.check()
    run = config.run.training_run(config.steps)
    device, out = run.torch_device, run.out
    space: ClassSpace = get_class_space(config.class_space)
    if config.model.num_classes != space.num_classes:
        raise GescoInputError(
            f"model.num_classes = {config.model.num_classes} but class space {space.name} has {space.num_classes} ids"
        )
    pools = _load_pools(config, progress)
    weights = class_weights(pools.labels, space.num_classes, config.class_weight_power)
    weights = None if weights is None else weights.to(device)

    torch.manual_seed(config.run.seed)
    model = SegmenterNet(config.model).to(device)
    ema = EMA(model, config.optim.ema_decay)
    opt = config.optim.optimizer(model.parameters())
    step, wall = run.resume(model, ema, opt, enabled=resume)
    ema_model = SegmenterNet(config.model).to(device)
    gen = torch.Generator()

    def card(steps_done: int, evaluation: dict | None = None) -> SegmenterCard:
        return _card(config, model, pools, steps_done, wall, evaluation)

    bar = run.progress_bar(progress, step, "train segmenter")
    model.train()
    t_log, loss_sum, n_sum = time.time(), 0.0, 0
    while step < config.steps:
        t0 = time.time()
        loss, lr = _segmenter_step(model, ema, opt, config, pools, weights, gen, step, device)
        step += 1
        wall += time.time() - t0
        loss_sum, n_sum = loss_sum + float(loss.detach()), n_sum + 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", img_s=f"{config.batch_size / (time.time() - t0):.0f}")
        if run.log_due(step):
            rec = {"step": step, "loss": round(loss_sum / n_sum, 4), "lr": lr,
                   "img_per_s": round(n_sum * config.batch_size / (time.time() - t_log), 1),
                   "wall_time_s": round(wall, 1)}
            loss_sum, n_sum, t_log = 0.0, 0, time.time()
            if run.checkpoint_due(step):
                ema.copy_to(ema_model)
                ema_model.eval()
                rec["val_miou_ema"] = round(score(_predict_with(ema_model, device), pools.mon_images, pools.mon_labels,
                                                  space).miou, 4)
                run.save_state(model, ema, opt, step, wall)
                save_checkpoint(out / "segmenter", ema_model, card(step))
                t_log = time.time()
            run.log(rec)
            if bar is not None and "val_miou_ema" in rec:
                bar.write(f"step {step}: loss {rec['loss']}, val mIoU (EMA, {len(pools.mon_images)} scenes) "
                          f"{rec['val_miou_ema']}")
    if bar is not None:
        bar.close()

    # final evaluation of the EMA weights, recorded in the checkpoint
    ema.copy_to(ema_model)
    ema_model.eval()
    evaluation = _final_evaluation(config, ema_model, space, device, progress)
    final = save_checkpoint(out / "segmenter", ema_model, card(step, evaluation))
    if config.export_to:
        save_checkpoint(config.export_to, ema_model, card(step, evaluation))
        print(f"exported to {config.export_to}")
    return final


# --------------------------------------------------------------------------- CLI
def run_cli(args: argparse.Namespace) -> int:
    """Handler of ``gesco train segmenter`` (its parser is built in :mod:`gesco.commands.train`)."""
    config = config_from_args(args, SegmenterTrainConfig, "segmenter training")
    path = train_segmenter(config, resume=not args.no_resume, progress=not args.no_progress)
    print(f"checkpoint: {path}")
    return 0
