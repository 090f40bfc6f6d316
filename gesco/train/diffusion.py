"""Training of the semantic diffusion model (paper sections 3.3-3.5).

One step: draw a batch of (image, label map, instance map), build the clean one-hot
conditioning (present classes + instance edges, padded to ``C + 1`` maps), pass it
through the channel at a random PSNR (and FDS) with :func:`corrupt_conditioning`, drop
it to the all-zero null label with probability ``p_uncond`` (classifier-free guidance),
draw ``t`` uniformly and ``eps``, and minimise the hybrid loss of Eq. (10)
(optionally with min-SNR weighting of the epsilon-MSE).

Runs single-process or under ``torchrun`` (DDP; each rank draws different scenes, the
gradients are averaged, so the weights stay identical). Checkpoints: EMA weights as a
:mod:`gesco.diffusion.checkpoint` (safetensors + JSON) and a resumable training state.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from gesco.diffusion.checkpoint import ModelCard, load_checkpoint, save_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig, GaussianDiffusion
from gesco.diffusion.unet import SpadeUNet, UNetConfig
from gesco.semantics.classes import get_class_space
from gesco.semantics.layout import full_conditioning
from gesco.semantics.noisy import NoisyMapsConfig, corrupt_conditioning
from gesco.train.utils import (
    EMA,
    autocast_context,
    init_distributed,
    load_training_state,
    lr_at,
    save_training_state,
)


@dataclass
class DiffusionTrainConfig:
    """Everything a diffusion training run depends on (saved into the checkpoint's record)."""

    name: str = "gesco-synthetic-64x128"
    data: str = "synthetic"
    data_root: str | None = None
    class_space: str = "cityscapes"
    height: int = 64
    width: int = 128
    train_size: int = 1_000_000
    batch_size: int = 8
    steps: int = 4000
    lr: float = 1e-4
    lr_schedule: str = "cosine"
    lr_final_frac: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    p_uncond: float = 0.2
    mse_weighting: str = "uniform"
    min_snr_gamma: float = 5.0
    multiscale_loss: bool = False
    time_budget_s: float | None = None
    noisy: NoisyMapsConfig = field(default_factory=NoisyMapsConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    seed: int = 0
    init_from: str | None = None
    out_dir: str = "runs/diffusion"
    checkpoint_every: int = 250
    log_every: int = 10
    amp: str = "auto"
    device: str = "auto"
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["noisy"] = self.noisy.to_dict()
        d["unet"] = self.unet.to_dict()
        d["diffusion"] = self.diffusion.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiffusionTrainConfig":
        d = dict(d)
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown training config fields {sorted(unknown)}")
        if "noisy" in d:
            d["noisy"] = NoisyMapsConfig(**d["noisy"])
        if "unet" in d:
            d["unet"] = UNetConfig.from_dict(d["unet"])
        if "diffusion" in d:
            d["diffusion"] = DiffusionConfig.from_dict(d["diffusion"])
        return cls(**d)


def make_batch(dataset, indices: list[int], space) -> dict[str, torch.Tensor]:
    """Stack dataset items and build the clean padded conditioning ``(B, C + 1, H, W)``."""
    items = [dataset[i] for i in indices]
    images = torch.stack([it["image"] for it in items])
    conds, edges = [], []
    for it in items:
        inst = it.get("instance")
        inst_np = None if inst is None else inst.numpy()
        conds.append(full_conditioning(it["label"].numpy(), space, inst_np))
        edges.append(inst is not None)
    return {"image": images, "cond": torch.stack(conds), "has_edges": torch.tensor(edges)}


def conditioning_for_training(
    cond: torch.Tensor,
    has_edges: torch.Tensor,
    config: DiffusionTrainConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """Noisy maps (channel + FDS) and the classifier-free-guidance drop to the null label."""
    noisy, _ = corrupt_conditioning(cond, has_edges, config.noisy, generator)
    drop = torch.rand(cond.shape[0], generator=generator) < config.p_uncond
    return noisy * (~drop).to(noisy.dtype)[:, None, None, None]


def _training_dataset(config: DiffusionTrainConfig):
    if config.data == "synthetic":
        from gesco.data.synthetic import SyntheticScenes

        return SyntheticScenes(split="train", size=config.train_size, height=config.height, width=config.width)
    from gesco.data import build_dataset

    return build_dataset(config.data, config.data_root, "train", config.height, config.width, hflip=True)


def _device(spec: str, local_rank: int) -> torch.device:
    if spec == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


#: U-Net fields a warm start may change: they shape no weight.
WARM_START_FREE_FIELDS = ("num_groups",)


def warm_start(model: SpadeUNet, ema: EMA, config: DiffusionTrainConfig, device: torch.device) -> ModelCard:
    """Load the weights of checkpoint ``config.init_from`` into ``model`` and the EMA.

    The U-Net may differ from the checkpoint's only in ``num_groups`` (GroupNorm grouping has
    no weights of its own, so the weights carry over; see :data:`WARM_START_FREE_FIELDS`).

    For fine-tuning, or continuing a run whose resumable state is gone (only the EMA
    checkpoint was kept): the model and its EMA both start at the checkpoint's weights, the
    optimiser starts fresh and the step count at 0; the EMA's warm-up counter starts at the
    checkpoint's step count, so its averaging stays as slow as the original run's. The checkpoint's U-Net, class space and
    resolution must equal this run's; otherwise :class:`CheckpointError` names the field.
    """
    from gesco.diffusion.checkpoint import read_card

    free = {f: getattr(config.unet, f) for f in WARM_START_FREE_FIELDS}
    src_unet = UNetConfig.from_dict({**config.unet.to_dict(), **{f: getattr(read_card(config.init_from).unet, f) for f in free}})
    src, card = load_checkpoint(
        config.init_from,
        expect_unet=src_unet,
        expect_class_space=config.class_space,
        expect_resolution=(config.height, config.width),
        map_location=device,
    )
    model.load_state_dict(src.state_dict())
    ema.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    ema.num_updates = int(card.training.get("steps", 0))
    return card


@dataclass
class TrainResult:
    """What :func:`train_diffusion` leaves: the EMA checkpoint, the raw model, the step reached."""

    checkpoint: Path
    model: torch.nn.Module
    steps: int


def train_diffusion(config: DiffusionTrainConfig, resume: bool = True, progress: bool = True) -> TrainResult:
    """Train (or resume) a diffusion model up to ``config.steps``."""
    dist_info = init_distributed()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = _device(config.device, dist_info.local_rank)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    space = get_class_space(config.class_space)
    if config.unet.label_channels != space.label_channels:
        raise ValueError(
            f"unet.label_channels = {config.unet.label_channels} but class space {space.name} needs {space.label_channels}"
        )
    dataset = _training_dataset(config)

    torch.manual_seed(config.seed)  # identical initial weights on every rank
    model = SpadeUNet(config.unet).to(device)
    diffusion = GaussianDiffusion(config.diffusion)
    ema = EMA(model, config.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    state_path = out / "state"
    step, wall = 0, 0.0
    if resume and state_path.with_suffix(".json").exists():
        meta = load_training_state(state_path, model, ema, opt)
        step, wall = int(meta["step"]), float(meta.get("wall_time_s", 0.0))
        if dist_info.is_main:
            print(f"resumed from {state_path} at step {step}")
    elif config.init_from:
        init_card = warm_start(model, ema, config, device)
        if dist_info.is_main:
            print(f"initialised from {config.init_from} ({init_card.training.get('steps')} steps); AdamW starts fresh")
    ddp_model = DDP(model) if dist_info.world_size > 1 else model
    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + dist_info.rank)
    log_path = out / "train_log.jsonl"

    def card(steps_done: int, wall_s: float) -> ModelCard:
        return ModelCard(
            unet=config.unet,
            diffusion=config.diffusion,
            class_space=config.class_space,
            resolution=(config.height, config.width),
            conditioning={
                "noisy_training": config.noisy.to_dict(),
                "p_uncond": config.p_uncond,
                "null_label": "zeros",
                "edge_map": True,
            },
            training={
                "steps": steps_done,
                "batch_size": config.batch_size,
                "world_size": dist_info.world_size,
                "data": config.data,
                "seed": config.seed,
                "wall_time_s": round(wall_s, 1),
                "config": config.to_dict(),
            },
        )

    bar = None
    if progress and dist_info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=step, desc="train diffusion", dynamic_ncols=True)
    n_data = len(dataset)
    t_last = time.time()
    budget = config.time_budget_s
    if budget is not None and budget <= 0:
        raise ValueError(f"time_budget_s must be > 0, got {budget}")

    def out_of_time() -> bool:
        return budget is not None and wall >= budget

    while step < config.steps and not out_of_time():
        t0 = time.time()
        # The data order is a pure function of the step, so a resumed run sees the same scenes.
        gen.manual_seed(config.seed * 1_000_003 + dist_info.rank + 7919 * step)
        base = (step * dist_info.world_size + dist_info.rank) * config.batch_size
        batch = make_batch(dataset, [(base + j) % n_data for j in range(config.batch_size)], space)
        x0 = batch["image"].to(device)
        y = conditioning_for_training(batch["cond"], batch["has_edges"], config, gen).to(device)
        t = torch.randint(0, diffusion.num_steps, (x0.shape[0],), generator=gen).to(device)
        noise = torch.randn(x0.shape, generator=gen).to(device)
        xt = diffusion.q_sample(x0, t, noise)
        lr = lr_at(
            step, config.lr, config.warmup_steps, config.steps, config.lr_schedule, config.lr_final_frac,
            progress=None if budget is None else wall / budget,
        )
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast_context(device, config.amp):
            model_out = ddp_model(xt, t, y)
        weight = diffusion.min_snr_weight(t, config.min_snr_gamma) if config.mse_weighting == "min-snr" else None
        losses = diffusion.training_losses(model_out.float(), x0, xt, t, noise, weight, multiscale=config.multiscale_loss)
        loss = losses["loss"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        ema.update(model)
        step += 1
        wall += time.time() - t0
        if dist_info.is_main:
            if step % config.log_every == 0 or step == config.steps:
                rec = {
                    "step": step,
                    "loss": round(float(loss.detach()), 5),
                    "mse": round(float(losses["mse"].detach().mean()), 5),
                    "vb": round(float(losses.get("vb", torch.zeros(1)).detach().mean()), 5),
                    "lr": lr,
                    "grad_norm": round(float(gnorm), 4),
                    "s_per_step": round((time.time() - t_last) / config.log_every, 3),
                    "wall_time_s": round(wall, 1),
                }
                t_last = time.time()
                with log_path.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}", lr=f"{lr:.1e}")
            if step % config.checkpoint_every == 0 or step == config.steps or out_of_time():
                save_training_state(state_path, model, ema, opt, {"step": step, "wall_time_s": wall})
                ema_model = SpadeUNet(config.unet)
                ema.copy_to(ema_model)
                save_checkpoint(out / "ema", ema_model, card(step, wall))
    if bar is not None:
        bar.close()
    if dist_info.world_size > 1:
        torch.distributed.barrier()
    return TrainResult(checkpoint=out / "ema.safetensors", model=model, steps=step)
