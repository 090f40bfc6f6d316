"""Training of the semantic diffusion model (paper sections 3.3-3.5).

One step: draw a batch of (image, label map, instance map), build the clean one-hot
conditioning (present classes + instance edges, padded to ``C + 1`` maps), pass it
through the channel at a random PSNR (and FDS) with :func:`corrupt_conditioning`, drop
it to the all-zero null label with probability ``p_uncond`` (classifier-free guidance),
draw ``t`` uniformly and ``eps``, and minimise the hybrid loss of Eq. (10)
(optionally with min-SNR weighting of the epsilon-MSE).

The clean scenes of a step are a pure function of the step; they are rendered in the
training process or, with ``num_workers > 0``, by DataLoader workers
(:mod:`gesco.train.data`); the corruption and all draws stay here, so both give the same
run. ``noise_draws`` trains each rendered scene with several independent corruptions,
``t`` and ``eps`` per step.

Runs single-process or under ``torchrun`` (DDP; each rank draws different scenes, the
gradients are averaged, so the weights stay identical). Checkpoints: EMA weights as a
:mod:`gesco.diffusion.checkpoint` (safetensors + JSON) and a resumable training state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from gesco.config_base import ConfigBase
from gesco.diffusion.checkpoint import ModelCard, load_checkpoint, save_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig, GaussianDiffusion
from gesco.diffusion.unet import MEAN_PATH_PREFIXES, SpadeUNet, UNetConfig
from gesco.semantics.classes import get_class_space
from gesco.semantics.noisy import NoisyMapsConfig, corrupt_conditioning
from gesco.train.config import MOVED_FIELDS, DataConfig, OptimiserConfig, RunConfig
from gesco.train.data import StepBatches, clean_batches, make_batch  # noqa: F401  (make_batch: public here too)
from gesco.train.run import StepTimer, TrainingRun, set_lr
from gesco.train.utils import EMA, DistInfo, autocast_context, init_distributed


@dataclass
class DiffusionTrainConfig(ConfigBase):
    """Everything a diffusion training run depends on (saved into the checkpoint's record).

    ``optim``, ``dataset`` and ``run`` are the sub-configs the trainers share
    (:mod:`gesco.train.config`); a flat ``lr`` / ``data`` / ``out_dir`` / ... of an older config is
    read into them (:data:`MOVED_FIELDS`). ``amp``: ``"auto"`` / ``"bf16"`` (bf16 autocast on
    CUDA), ``"fp16"``, or off on the CPU.

    ``t_range``: ``[t_lo, t_hi]`` draws the training time ``t`` uniformly from
    ``t_lo <= t < t_hi`` instead of every step of the chain (``None``); for a fine-tune of the
    small-t end, where the sampler's last passes draw the fine texture (docs/grain.md).
    Warm-started from a guidance-only student (``init_from`` with a ``"distilled"`` record),
    the run keeps that record in its card, so the result is sampled as a student; it then
    needs ``p_uncond = 0`` (a student is never asked for the unconditional prediction).
    """

    config_name: ClassVar[str] = "training config"
    moved_fields: ClassVar[dict[str, str]] = MOVED_FIELDS

    name: str = "gesco-synthetic-64x128"
    dataset: DataConfig = field(default_factory=DataConfig)
    class_space: str = "cityscapes"
    height: int = 64
    width: int = 128
    train_size: int = 1_000_000
    batch_size: int = 8
    steps: int = 4000
    optim: OptimiserConfig = field(default_factory=OptimiserConfig)
    p_uncond: float = 0.2
    mse_weighting: str = "uniform"
    min_snr_gamma: float = 5.0
    t_range: list[int] | None = None
    multiscale_loss: bool = False
    trainable: list[str] | None = None
    time_budget_s: float | None = None
    num_workers: int = 0
    noise_draws: int = 1
    noisy: NoisyMapsConfig = field(default_factory=NoisyMapsConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    init_from: str | None = None
    run: RunConfig = field(default_factory=lambda: RunConfig(out_dir="runs/diffusion"))
    amp: str = "auto"


def conditioning_for_training(
    cond: torch.Tensor,
    has_edges: torch.Tensor,
    config: DiffusionTrainConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """Noisy maps (channel + FDS) and the classifier-free-guidance drop to the null label."""
    noisy, _ = corrupt_conditioning(cond, has_edges, config.noisy, generator)
    drop = torch.rand(cond.shape[0], generator=generator, device=cond.device) < config.p_uncond
    return noisy * (~drop).to(noisy.dtype)[:, None, None, None]


def training_inputs(
    batch: dict[str, torch.Tensor],
    config: DiffusionTrainConfig,
    diffusion: GaussianDiffusion,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step's model inputs from its clean batch of ``B`` scenes.

    Each scene is repeated ``n = config.noise_draws`` times; every copy gets its own noisy
    maps, guidance drop, ``t`` (uniform over ``config.t_range``, default every step) and
    ``eps``, all drawn from ``generator`` (seeded per step) in this order: corruption, drop,
    ``t``, ``eps``. They are computed on the generator's device (the trainer's is the
    training device) and the results moved to ``device``.

    Args:
        batch: ``image`` ``(B, 3, H, W)``, ``cond`` ``(B, C + 1, H, W)``, ``has_edges`` ``(B,)``.
    Returns:
        ``x0`` ``(B n, 3, H, W)``, ``y`` ``(B n, C + 1, H, W)`` (the corrupted conditioning),
        ``t`` ``(B n,)`` int64 and ``noise`` ``(B n, 3, H, W)``, on ``device``.
    """
    n, on = config.noise_draws, generator.device
    image, cond, has_edges = (batch[k].to(on).repeat_interleave(n, dim=0) for k in ("image", "cond", "has_edges"))
    y = conditioning_for_training(cond, has_edges, config, generator)
    t_lo, t_hi = config.t_range if config.t_range is not None else (0, diffusion.num_steps)
    t = torch.randint(t_lo, t_hi, (image.shape[0],), generator=generator, device=on)
    noise = torch.randn(image.shape, generator=generator, device=on)
    return tuple(v.to(device, non_blocking=True) for v in (image, y, t, noise))


def _clock(device: torch.device) -> float:
    """``time.perf_counter()`` once the device's queued work is done (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def trainable_parameters(model: torch.nn.Module, prefixes: list[str] | None) -> list[torch.nn.Parameter]:
    """The parameters to train: all (``prefixes`` None), or those whose name starts with a prefix.

    The others are frozen (``requires_grad = False``), e.g. ``["mean_skip."]`` fits only the
    mean-colour path of a warm-started model. A prefix matching nothing is an error.
    """
    if prefixes is None:
        return list(model.parameters())
    chosen = []
    for name, p in model.named_parameters():
        p.requires_grad_(any(name.startswith(pre) for pre in prefixes))
        if p.requires_grad:
            chosen.append(p)
    if not chosen:
        raise ValueError(f"trainable prefixes {prefixes} match no parameter")
    return chosen


#: U-Net fields a warm start may change: they shape no weight.
WARM_START_FREE_FIELDS = ("num_groups", "mean_skip")


def warm_start(model: SpadeUNet, ema: EMA, config: DiffusionTrainConfig, device: torch.device) -> ModelCard:
    """Load the weights of checkpoint ``config.init_from`` into ``model`` and the EMA.

    The U-Net may differ from the checkpoint's only in :data:`WARM_START_FREE_FIELDS`:
    ``num_groups`` (GroupNorm grouping has no weights of its own, so the weights carry over)
    and ``mean_skip`` (its layer is zero-initialised, so the model computes what the
    checkpoint did until it is trained).

    For fine-tuning, or continuing a run whose resumable state is gone (only the EMA
    checkpoint was kept): the model and its EMA both start at the checkpoint's weights, the
    optimiser starts fresh and the step count at 0; the EMA's warm-up counter starts at the
    checkpoint's step count, so its averaging stays as slow as the original run's. The checkpoint's U-Net, class space and
    resolution must equal this run's; otherwise :class:`CheckpointError` names the field.
    """
    from gesco.diffusion.checkpoint import read_card

    src_fields = read_card(config.init_from).unet
    src_unet = replace(config.unet, **{f: getattr(src_fields, f) for f in WARM_START_FREE_FIELDS})
    src, card = load_checkpoint(
        config.init_from,
        expect_unet=src_unet,
        expect_class_space=config.class_space,
        expect_resolution=(config.height, config.width),
        map_location=device,
    )
    missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
    if unexpected or any(not k.startswith(MEAN_PATH_PREFIXES) for k in missing):
        raise ValueError(f"warm start from {config.init_from}: missing weights {missing}, unexpected {unexpected}")
    ema.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    ema.num_updates = int(card.training.get("steps", 0))
    return card


@dataclass
class TrainResult:
    """What :func:`train_diffusion` leaves: the EMA checkpoint, the raw model, the step reached."""

    checkpoint: Path
    model: torch.nn.Module
    steps: int


def optimization_step(
    model: torch.nn.Module,
    net: torch.nn.Module,
    ema: EMA,
    opt: torch.optim.Optimizer,
    diffusion: GaussianDiffusion,
    config: DiffusionTrainConfig,
    inputs: tuple[torch.Tensor, ...],
    lr: float,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Forward, loss, backward, clipping, AdamW and EMA on one step's ``(x0, y, t, noise)``.

    ``net`` is ``model`` or its DDP wrapper. The forward runs under :func:`autocast_context`
    (bf16 on CUDA with ``amp = "auto"``); the loss is computed outside it, in float32.

    Returns:
        the per-sample losses (``loss``, ``mse``, ``vb``: ``(B n,)`` each) and the gradient norm.
    """
    x0, y, t, noise = inputs
    set_lr(opt, lr)
    xt = diffusion.q_sample(x0, t, noise)
    with autocast_context(x0.device, config.amp):
        model_out = net(xt, t, y)
    weight = diffusion.min_snr_weight(t, config.min_snr_gamma) if config.mse_weighting == "min-snr" else None
    losses = diffusion.training_losses(model_out.float(), x0, xt, t, noise, weight, multiscale=config.multiscale_loss)
    opt.zero_grad(set_to_none=True)
    losses["loss"].mean().backward()
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
    opt.step()
    ema.update(model)
    return losses, gnorm


def _check_config(config: DiffusionTrainConfig) -> None:
    if config.time_budget_s is not None and config.time_budget_s <= 0:
        raise ValueError(f"time_budget_s must be > 0, got {config.time_budget_s}")
    if config.num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {config.num_workers}")
    if config.noise_draws < 1:
        raise ValueError(f"noise_draws must be >= 1, got {config.noise_draws}")
    t = config.trainable
    if t is not None and (not isinstance(t, list) or not t or not all(isinstance(x, str) and x for x in t)):
        raise ValueError(f"trainable must be a non-empty list of parameter-name prefixes, got {t!r}")
    if config.optim.grad_clip is None:
        raise ValueError("optim.grad_clip must be set for diffusion training (the loop reports the gradient norm)")
    _check_t_range(config.t_range, config.diffusion.num_timesteps)
    init_student_record(config)


def _check_t_range(t_range: list[int] | None, num_timesteps: int) -> None:
    """``None`` or ``[t_lo, t_hi]`` with ``0 <= t_lo < t_hi <= num_timesteps`` (ints)."""
    if t_range is None:
        return
    ok = isinstance(t_range, list | tuple) and len(t_range) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in t_range)
    if not ok or not 0 <= t_range[0] < t_range[1] <= num_timesteps:
        raise ValueError(f"t_range must be [t_lo, t_hi] with 0 <= t_lo < t_hi <= {num_timesteps} "
                         f"(t drawn from t_lo <= t < t_hi), got {t_range!r}")


def init_student_record(config: DiffusionTrainConfig) -> dict | None:
    """The ``"distilled"`` record of ``config.init_from``'s card (``None``: no warm start, or an
    ordinary checkpoint). A run warm-started from a student keeps it; such a run must have
    ``p_uncond = 0``, else :class:`ValueError`."""
    if not config.init_from:
        return None
    from gesco.diffusion.checkpoint import read_card

    record = read_card(config.init_from).distilled
    if record is not None and config.p_uncond != 0:
        raise ValueError(f"init_from {config.init_from} is a distilled student, which is never asked for the "
                         f"unconditional prediction: fine-tune it with p_uncond=0, got {config.p_uncond}")
    return record


@dataclass
class _Trainee:
    """What the loop trains: the model, its EMA, the optimiser and the chain, at ``step`` / ``wall`` s."""

    model: SpadeUNet
    ema: EMA
    opt: torch.optim.Optimizer
    diffusion: GaussianDiffusion
    step: int
    wall: float


def _build_trainee(config: DiffusionTrainConfig, run: TrainingRun, dist_info: DistInfo, resume: bool) -> _Trainee:
    """Seeded initial weights (identical on every rank), EMA and AdamW; then the saved state of
    a resumed run, or the weights of ``config.init_from`` for a fresh one (:func:`warm_start`)."""
    device = run.torch_device
    torch.manual_seed(config.run.seed)  # identical initial weights on every rank
    model = SpadeUNet(config.unet).to(device)
    diffusion = GaussianDiffusion(config.diffusion)
    ema = EMA(model, config.optim.ema_decay)
    opt = config.optim.optimizer(trainable_parameters(model, config.trainable))
    step, wall = run.resume(model, ema, opt, enabled=resume)
    if step == 0 and config.init_from:  # a fresh run (not a resumed one) from another checkpoint
        init_card = warm_start(model, ema, config, device)
        if dist_info.is_main:
            print(f"initialised from {config.init_from} ({init_card.training.get('steps')} steps); AdamW starts fresh")
    return _Trainee(model, ema, opt, diffusion, step, wall)


def _card(config: DiffusionTrainConfig, world_size: int, steps_done: int, wall_s: float) -> ModelCard:
    """The checkpoint's card: architecture, chain, class space, resolution, conditioning, training record.

    A fine-tune of a guidance-only student keeps the student's ``"distilled"`` record and the
    rest of its conditioning record (``guidance_folded``, ...), with this run's entries on top.
    """
    student = init_student_record(config)
    conditioning = {
        "noisy_training": config.noisy.to_dict(),
        "p_uncond": config.p_uncond,
        "null_label": "zeros",
        "edge_map": True,
    }
    if student is not None:
        from gesco.diffusion.checkpoint import read_card

        conditioning = {**read_card(config.init_from).conditioning, **conditioning}
    return ModelCard(
        unet=config.unet,
        diffusion=config.diffusion,
        class_space=config.class_space,
        resolution=(config.height, config.width),
        distilled=student,
        conditioning=conditioning,
        training={
            "steps": steps_done,
            "batch_size": config.batch_size,
            "world_size": world_size,
            "data": config.dataset.name,
            "seed": config.run.seed,
            "wall_time_s": round(wall_s, 1),
            "config": config.to_dict(),
        },
    )


def _log_record(step: int, losses: dict[str, torch.Tensor], lr: float, gnorm: torch.Tensor, times: dict[str, float],
                wall: float) -> dict:
    """One line of ``train_log.jsonl``: the step's losses, learning rate, gradient norm and timings."""
    return {
        "step": step,
        "loss": round(float(losses["loss"].detach().mean()), 5),
        "mse": round(float(losses["mse"].detach().mean()), 5),
        "vb": round(float(losses.get("vb", torch.zeros(1)).detach().mean()), 5),
        "lr": lr,
        "grad_norm": round(float(gnorm), 4),
        "s_per_step": times["s_per_step"],
        "data_s": times["data_s"],
        "wait_s": times["wait_s"],
        "net_s": times["net_s"],
        "wall_time_s": round(wall, 1),
    }


def _save(run: TrainingRun, config: DiffusionTrainConfig, t: _Trainee, world_size: int) -> None:
    """The resumable state and the EMA checkpoint (``<out_dir>/ema``) at the current step."""
    run.save_state(t.model, t.ema, t.opt, t.step, t.wall)
    ema_model = SpadeUNet(config.unet)
    t.ema.copy_to(ema_model)
    save_checkpoint(run.out / "ema", ema_model, _card(config, world_size, t.step, t.wall))


def train_diffusion(config: DiffusionTrainConfig, resume: bool = True, progress: bool = True) -> TrainResult:
    """Train (or resume) a diffusion model up to ``config.steps`` (or ``config.time_budget_s``).

    Each step takes ``batch_size`` clean scenes (rendered here, or by ``num_workers``
    DataLoader workers), repeats each ``noise_draws`` times and trains on the
    ``batch_size * noise_draws`` samples (:func:`training_inputs`, :func:`optimization_step`).
    The log records, per step and averaged over the log interval, ``data_s`` (waiting for
    the batch, corruption and draws; ``wait_s`` of it waiting for the clean batch, which
    includes rendering it when ``num_workers = 0``) and ``net_s`` (forward, backward,
    optimiser, EMA).
    """
    _check_config(config)
    dist_info = init_distributed()
    run = config.run.training_run(config.steps, dist_info.local_rank, dist_info.is_main)
    device = run.torch_device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest convolutions
    space = get_class_space(config.class_space)
    if config.unet.label_channels != space.label_channels:
        raise ValueError(
            f"unet.label_channels = {config.unet.label_channels} but class space {space.name} needs {space.label_channels}"
        )
    dataset = config.dataset.train_set(config.height, config.width, config.train_size)
    t = _build_trainee(config, run, dist_info, resume)
    ddp_model = DDP(t.model) if dist_info.world_size > 1 else t.model
    # The step's random draws (corruption, drop, t, eps) happen on the training device: on a GPU
    # the channel + FDS of 100+ maps per step would otherwise cost more than the step itself.
    gen = torch.Generator(device=device).manual_seed(config.run.seed * 1_000_003 + dist_info.rank)

    bar = run.progress_bar(progress, t.step, "train diffusion")
    budget = config.time_budget_s

    def out_of_time() -> bool:
        return budget is not None and t.wall >= budget

    # The data order is a pure function of the step, so a resumed run sees the same scenes.
    source = StepBatches(dataset, space, config.batch_size, config.run.seed, dist_info.rank, dist_info.world_size)
    batches = clean_batches(source, t.step, config.steps, config.num_workers, pin_memory=device.type == "cuda")
    timer = StepTimer("data_s", "wait_s", "net_s")  # per-step means since the last log record
    while t.step < config.steps and not out_of_time():
        t0 = _clock(device)
        gen.manual_seed(config.run.seed * 1_000_003 + dist_info.rank + 7919 * t.step)
        batch = next(batches)
        t_wait = time.perf_counter()
        inputs = training_inputs(batch, config, t.diffusion, gen, device)
        t1 = _clock(device)
        lr = config.optim.lr_at(t.step, config.steps, progress=None if budget is None else t.wall / budget)
        losses, gnorm = optimization_step(t.model, ddp_model, t.ema, t.opt, t.diffusion, config, inputs, lr)
        t2 = _clock(device)
        t.step += 1
        t.wall += t2 - t0
        timer.add(data_s=t1 - t0, wait_s=t_wait - t0, net_s=t2 - t1)
        if run.log_due(t.step):
            run.log(_log_record(t.step, losses, lr, gnorm, timer.averages(), t.wall))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{float(losses['loss'].detach().mean()):.4f}", lr=f"{lr:.1e}")
        if (run.checkpoint_due(t.step) or out_of_time()) and dist_info.is_main:
            _save(run, config, t, dist_info.world_size)
    batches.close()  # stops the DataLoader workers, if any
    if bar is not None:
        bar.close()
    if dist_info.world_size > 1:
        torch.distributed.barrier()
    return TrainResult(checkpoint=run.out / "ema.safetensors", model=t.model, steps=t.step)
