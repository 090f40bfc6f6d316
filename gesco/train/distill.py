"""Guided progressive distillation of a diffusion checkpoint into a few-step student.

``gesco train distill --config configs/distill_synthetic_64x128.yaml`` (docs/distillation.md).
The closed forms are in :mod:`gesco.diffusion.distill`; this module is the loop.

Rounds (each one a student initialised from its teacher's weights, same U-Net):

* round 0, the *guidance round* (Meng et al. 2023, stage one; ``guidance_round_steps > 0``):
  the student, read as ``v``, learns the guided teacher's clean estimate
  ``x_hat = (z - sigma (eps_0 + s (eps_y - eps_0))) / alpha`` at the ``base_steps`` grid points.
  This folds the guidance (two passes -> one) and changes the parametrisation (eps -> v)
  before any step is removed. With ``guidance_round_steps = 0`` round 1 does both at once.
* rounds ``1..rounds``, *halving* (Salimans & Ho 2022, Algorithm 2): ``N -> N / 2``; one
  student DDIM step from teacher position ``2j`` to ``2j - 2`` matches two teacher DDIM
  steps. Each round's student (its EMA weights) is the next round's teacher, unguided
  (the guidance is already in its weights).

A teacher that is itself a distilled checkpoint continues halving from its step count (no
guidance round). Every round writes ``<out_dir>/round{r}-{N}steps.{safetensors,json}``, the
last one is also written as ``<out_dir>/distilled``; their cards record
``{"distilled": {"steps", "guidance_scale", "parametrisation", "teacher", ...}}``
(:mod:`gesco.diffusion.checkpoint`), which :class:`gesco.diffusion.pipeline.SemanticGenerator`
samples only with ``sampler="distilled"`` at that step count.

Data: the training scenes and noisy maps of diffusion training (:func:`make_batch`,
:func:`conditioning_for_training` with the teacher's noisy-map settings), with the
classifier-free-guidance drop *off* (``p_uncond = 0``): the student always gets the condition.
Scenes are rendered in the process or by ``num_workers`` DataLoader workers
(:class:`StepScenes`); each may be used with ``noise_draws`` independent draws per step.
Resumable: a finished round is skipped (its checkpoint is the next teacher); an unfinished one
resumes from ``state-round{r}-...``. Single process (no DDP).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from gesco.config_base import ConfigBase
from gesco.defaults import DEFAULT_GUIDANCE
from gesco.devices import resolve_device
from gesco.diffusion.checkpoint import ModelCard, load_checkpoint, save_checkpoint
from gesco.diffusion.distill import LOSS_WEIGHTINGS, DistillGrid, distillation_loss, two_step_target, x0_predictor
from gesco.diffusion.gaussian import GaussianDiffusion
from gesco.diffusion.unet import SpadeUNet
from gesco.errors import GescoInputError
from gesco.sampler_specs import GUIDANCE_ONLY_SAMPLERS, PARAMETRISATIONS
from gesco.semantics.classes import get_class_space
from gesco.semantics.noisy import NoisyMapsConfig
from gesco.train.config import MOVED_FIELDS, DataConfig, OptimiserConfig, RunConfig
from gesco.train.diffusion import DiffusionTrainConfig, conditioning_for_training, make_batch
from gesco.train.run import set_lr
from gesco.train.utils import EMA, autocast_context, load_training_state, save_training_state

METHOD = "progressive distillation (Salimans & Ho 2022, Alg. 2), guidance folded in (Meng et al. 2023)"
GUIDANCE_METHOD = "guidance distillation over every time step (Meng et al. 2023, stage one), epsilon output"


@dataclass
class DistillConfig(ConfigBase):
    """Everything a distillation run depends on (saved into each student's card).

    Attributes:
        teacher: the checkpoint to distil (an ordinary guided model, or a distilled student
            to halve further).
        guidance_scale: ``s`` of ``eps_0 + s (eps_y - eps_0)`` folded into the student (2 =
            the pipeline's default).
        base_steps: the first teacher's DDIM chain (``N``; halved ``rounds`` times).
        rounds: halving rounds (64 -> 32 -> 16 -> 8 is 3).
        guidance_round_steps: optimiser steps of round 0 (0 skips it).
        steps_per_round: optimiser steps of each halving round.
        time_budget_s_per_round: wall-clock limit of each round (``None``: steps only); the
            learning-rate decay then follows the spent fraction of the budget.
        parametrisation: how the student's output is read: ``"v"`` (default), ``"x0"``.
        loss_weighting: ``"truncated-snr"`` (``max(SNR, 1)``, Salimans & Ho), ``"snr"`` or ``"uniform"``.
        clip_teacher: clamp the teacher's clean estimates to ``[-1, 1]`` (as its samplers do).
        student_init: a guidance-only student of the same teacher and scale whose weights the
            new student starts from (to continue its training under a new schedule and seed;
            guidance-only runs only); ``None``: the teacher's weights. The card records it and
            counts its steps in ``training.total_steps``.
        noisy: noisy-map settings of the conditioning (``None``: the teacher's).
        dataset: the training scenes (:class:`~gesco.train.config.DataConfig`).
        batch_size: rendered scenes per step; ``noise_draws``: independent (noisy maps, time,
            noise) draws per scene (the optimiser's batch is their product).
        num_workers: DataLoader processes rendering the scenes (0: in the training process);
            the batches are the same either way.
        optim: AdamW, the learning-rate schedule of each round, clipping and the EMA of the
            student's weights, which is what is saved (:class:`~gesco.train.config.OptimiserConfig`).
        run: output folder, seed, device, threads and the log / checkpoint cadences
            (:class:`~gesco.train.config.RunConfig`; the rounds are written under ``run.out_dir``).
        amp: ``"auto"`` / ``"bf16"`` (bf16 autocast on CUDA), ``"fp16"``, or off on the CPU.
    """

    config_name: ClassVar[str] = "distillation config"
    moved_fields: ClassVar[dict[str, str]] = MOVED_FIELDS

    name: str = "gesco-synthetic-64x128-distilled"
    teacher: str | None = None
    guidance_scale: float = DEFAULT_GUIDANCE
    base_steps: int = 64
    rounds: int = 3
    guidance_round_steps: int = 2000
    steps_per_round: int = 4000
    time_budget_s_per_round: float | None = None
    parametrisation: str = "v"
    loss_weighting: str = "truncated-snr"
    clip_teacher: bool = True
    student_init: str | None = None
    dataset: DataConfig = field(default_factory=DataConfig)
    train_size: int = 1_000_000
    batch_size: int = 32
    noise_draws: int = 1
    num_workers: int = 0
    optim: OptimiserConfig = field(
        default_factory=lambda: OptimiserConfig(lr=1e-4, lr_final_frac=0.0, warmup_steps=50, ema_decay=0.999))
    noisy: NoisyMapsConfig | None = None
    run: RunConfig = field(default_factory=lambda: RunConfig(out_dir="runs/distill"))
    amp: str = "auto"

    def validate(self) -> DistillConfig:
        if not self.teacher:
            raise GescoInputError("set the teacher checkpoint: --set teacher=checkpoints/diffusion-synthetic-64x128")
        self._check_parametrisation()
        if self.student_init is not None and not guidance_only(self):
            raise GescoInputError("student_init continues a guidance-only student: it needs parametrisation=eps and "
                                  "rounds=0 (a halving round starts from its teacher)")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise GescoInputError(f"loss_weighting must be one of {', '.join(LOSS_WEIGHTINGS)}, got {self.loss_weighting!r}")
        if self.rounds < 0 or self.guidance_round_steps < 0 or self.steps_per_round < 1:
            raise GescoInputError("rounds and guidance_round_steps must be >= 0, steps_per_round >= 1")
        if not self.guidance_scale >= 0:
            raise GescoInputError(f"guidance_scale must be >= 0, got {self.guidance_scale}")
        if self.batch_size < 1 or self.noise_draws < 1 or self.num_workers < 0 or self.optim.lr <= 0:
            raise GescoInputError("batch_size and noise_draws must be >= 1, num_workers >= 0 and optim.lr > 0")
        if self.optim.grad_clip is None:
            raise GescoInputError("optim.grad_clip must be set for distillation (the log reports the gradient norm)")
        if self.time_budget_s_per_round is not None and self.time_budget_s_per_round <= 0:
            raise GescoInputError(f"time_budget_s_per_round must be > 0, got {self.time_budget_s_per_round}")
        return self

    def _check_parametrisation(self) -> None:
        """``eps`` is for a guidance-only student only, with the loss and teacher it needs."""
        if self.parametrisation not in PARAMETRISATIONS:
            raise GescoInputError(f"parametrisation must be 'v', 'x0' or 'eps', got {self.parametrisation!r}")
        if self.parametrisation == "eps":
            # eps only for a guidance-only student over the whole chain (docs/distillation.md,
            # "Guidance-only students"): halving rounds need x_hat at t = T, where eps is unstable
            if self.rounds != 0 or self.guidance_round_steps < 1:
                raise GescoInputError(
                    "parametrisation 'eps' is for a guidance-only student: set rounds=0 and guidance_round_steps >= 1 "
                    "(halving rounds need 'v' or 'x0': x_hat from eps is unstable at t = T)"
                )
            if self.loss_weighting != "snr" or self.clip_teacher:
                raise GescoInputError(
                    "an 'eps' student regresses the guided epsilon itself: set loss_weighting=snr "
                    "(SNR * |x_hat - x~|^2 = |eps_S - eps_guided|^2) and clip_teacher=false"
                )


def guidance_only(config: DistillConfig) -> bool:
    """Whether ``config`` makes a guidance-only student (Meng et al. 2023, stage one, over every ``t``).

    Such a student predicts the guided ``eps_0 + s (eps_y - eps_0)`` in one conditional pass at
    every time step, so the ordinary data-prediction samplers run it at any step count (its
    card lists them under ``"samplers"``, :data:`GUIDANCE_ONLY_SAMPLERS`).
    """
    return config.parametrisation == "eps" and config.rounds == 0


@dataclass
class RoundPlan:
    """One round: ``kind`` ``"guidance"`` (N -> N, fold the guidance) or ``"halve"`` (N -> N / 2)."""

    index: int
    kind: str
    teacher_steps: int
    student_steps: int
    train_steps: int

    @property
    def stem(self) -> str:
        return f"round{self.index}-{self.student_steps}steps"


@dataclass
class DistillResult:
    """What :func:`train_distill` leaves: the final student, every round's checkpoint, its step count."""

    checkpoint: Path
    rounds: list[Path] = field(default_factory=list)
    steps: int = 0


def plan_rounds(config: DistillConfig, teacher_card: ModelCard) -> list[RoundPlan]:
    """The rounds of a run from ``config`` and the teacher's card.

    Raises:
        GescoInputError: a chain that cannot be halved ``rounds`` times, nothing to do, or a
            distilled teacher with another guidance scale.
    """
    d = teacher_card.distilled
    if d is not None:
        n = int(d["steps"])
        if abs(float(d["guidance_scale"]) - config.guidance_scale) > 1e-9:
            raise GescoInputError(
                f"the teacher is distilled with guidance {d['guidance_scale']:g} folded in; set guidance_scale to it"
            )
        if d["parametrisation"] != config.parametrisation:
            raise GescoInputError(
                f"the teacher is a {d['parametrisation']!r} student; set parametrisation={d['parametrisation']}"
            )
        plans: list[RoundPlan] = []
    else:
        n = int(config.base_steps)
        if not 1 <= n <= teacher_card.diffusion.num_timesteps:
            raise GescoInputError(f"base_steps must be in [1, {teacher_card.diffusion.num_timesteps}], got {n}")
        if config.parametrisation == "eps" and n != teacher_card.diffusion.num_timesteps:
            raise GescoInputError(
                f"a guidance-only 'eps' student learns every time step: set base_steps={teacher_card.diffusion.num_timesteps}"
            )
        plans = [RoundPlan(0, "guidance", n, n, config.guidance_round_steps)] if config.guidance_round_steps > 0 else []
    if n % (2**config.rounds):
        raise GescoInputError(f"a chain of {n} steps cannot be halved {config.rounds} times")
    for r in range(1, config.rounds + 1):
        plans.append(RoundPlan(r, "halve", n, n // 2, config.steps_per_round))
        n //= 2
    if not plans:
        raise GescoInputError("nothing to do: rounds = 0 and no guidance round")
    return plans


class StepScenes(torch.utils.data.Dataset):
    """Item ``step``: the clean batch of that step of round ``round_index`` (a pure function of both).

    Step ``s`` takes the scenes ``(R_off + s) * B + j`` (modulo the data set), ``R_off`` a
    per-round offset, so rounds see different scenes; random flips of real data sets come
    from a torch RNG seeded by the step. The conditioning travels as ``uint8`` (it is 0 or 1)
    between DataLoader workers and the training process.
    """

    def __init__(self, dataset, space, batch_size: int, round_index: int, seed: int = 0) -> None:
        self.dataset, self.space, self.batch_size = dataset, space, batch_size
        self.offset, self.seed = 1_000_003 * round_index, seed

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        base = (self.offset + int(step)) * self.batch_size
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1_000_003 + self.offset + 7919 * int(step) + 2**31 - 1)
            batch = make_batch(self.dataset, [(base + j) % len(self.dataset) for j in range(self.batch_size)], self.space)
        batch["cond"] = batch["cond"].to(torch.uint8)
        return batch


def step_batches(source: StepScenes, start: int, stop: int, num_workers: int = 0, pin_memory: bool = False):
    """The clean batches of steps ``start .. stop - 1`` in order (``cond`` back as float32)."""
    if num_workers == 0:
        it = (source[s] for s in range(start, stop))
    else:
        it = iter(torch.utils.data.DataLoader(source, batch_size=None, sampler=range(start, stop),
                                              num_workers=num_workers, prefetch_factor=4, pin_memory=pin_memory))
    for batch in it:
        batch["cond"] = batch["cond"].float()
        yield batch


def _student_card(teacher_card: ModelCard, config: DistillConfig, plan: RoundPlan, grid: DistillGrid,
                  origin: dict[str, Any], round_teacher: str, steps_done: int, wall_s: float,
                  noisy: NoisyMapsConfig, init: dict[str, Any] | None = None) -> ModelCard:
    only_guidance = guidance_only(config)
    return ModelCard(
        unet=teacher_card.unet,
        diffusion=teacher_card.diffusion,
        class_space=teacher_card.class_space,
        resolution=tuple(teacher_card.resolution),
        conditioning={**teacher_card.conditioning, "p_uncond": 0.0, "guidance_folded": config.guidance_scale,
                      "distillation_noisy": noisy.to_dict()},
        training={
            "kind": "distillation",
            "name": config.name,
            "steps": steps_done,
            "round": plan.index,
            "round_kind": plan.kind,
            "batch_size": config.batch_size,
            "noise_draws": config.noise_draws,
            "data": config.dataset.name,
            "seed": config.run.seed,
            "wall_time_s": round(wall_s, 1),
            **({"student_init": init, "total_steps": int(init.get("total_steps") or 0) + steps_done}
               if init else {}),
            "config": config.to_dict(),
        },
        distilled={
            **({"samplers": list(GUIDANCE_ONLY_SAMPLERS)} if only_guidance else {}),
            "steps": plan.student_steps,
            "guidance_scale": config.guidance_scale,
            "parametrisation": config.parametrisation,
            "teacher": origin["teacher"],
            "teacher_steps": origin["teacher_steps"],
            "base_steps": origin["base_steps"],
            "round": plan.index,
            "round_teacher": round_teacher,
            **({} if only_guidance else {"timesteps": grid.timesteps.tolist()}),
            "method": GUIDANCE_METHOD if only_guidance else METHOD,
        },
    )


def _check_done(card: ModelCard, plan: RoundPlan, config: DistillConfig, origin: dict, path: Path) -> None:
    d = card.distilled or {}
    want = {"steps": plan.student_steps, "guidance_scale": config.guidance_scale,
            "parametrisation": config.parametrisation, "teacher": origin["teacher"]}
    diff = {k: (d.get(k), v) for k, v in want.items() if d.get(k) != v}
    if diff:
        raise GescoInputError(f"{path} is a finished round of another run ({diff}); use --no-resume or another out_dir")


def train_distill(config: DistillConfig, resume: bool = True, progress: bool = True) -> DistillResult:
    """Run every round of :func:`plan_rounds`; return the final student's checkpoint."""
    config.validate()
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    device = resolve_device(config.run.device)
    out = Path(config.run.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    teacher, teacher_card = load_checkpoint(config.teacher, map_location=device)
    plans = plan_rounds(config, teacher_card)
    space = get_class_space(teacher_card.class_space)
    h, w = (int(v) for v in teacher_card.resolution)
    dataset = config.dataset.train_set(h, w, config.train_size)
    noisy = config.noisy
    if noisy is None:
        noisy = NoisyMapsConfig(**teacher_card.conditioning.get("noisy_training", {}))
    cond_config = DiffusionTrainConfig(noisy=noisy, p_uncond=0.0)  # no guidance drop: the student always sees y
    diffusion = GaussianDiffusion(teacher_card.diffusion)

    td = teacher_card.distilled
    if td is None:
        origin = {"teacher": str(config.teacher), "teacher_steps": teacher_card.training.get("steps"),
                  "base_steps": config.base_steps}
        teacher_param, teacher_scale = "eps", config.guidance_scale
    else:
        origin = {k: td.get(k) for k in ("teacher", "teacher_steps", "base_steps")}
        teacher_param, teacher_scale = td["parametrisation"], 1.0
    round_teacher = str(config.teacher)
    init_state, init = _student_init(config, teacher_card, device)
    log_path = out / "distill_log.jsonl"
    done: list[Path] = []
    student_card: ModelCard | None = None

    for plan in plans:
        stem = out / plan.stem
        teacher_grid = DistillGrid.build(diffusion, plan.teacher_steps)
        student_grid = teacher_grid if plan.kind == "guidance" else teacher_grid.coarser()
        if resume and stem.with_suffix(".json").exists():
            model, student_card = load_checkpoint(stem, map_location=device)
            _check_done(student_card, plan, config, origin, stem)
            print(f"round {plan.index} ({plan.teacher_steps} -> {plan.student_steps} steps) already done: {stem}")
        else:
            model, student_card = _run_round(
                plan, teacher, teacher_param, teacher_scale, teacher_grid, student_grid, teacher_card, config,
                device, dataset, space, cond_config, origin, round_teacher, stem, log_path, resume, progress, noisy,
                init_state, init,
            )
        done.append(stem.with_suffix(".safetensors"))
        teacher, teacher_param, teacher_scale, round_teacher = model, config.parametrisation, 1.0, str(stem)

    assert student_card is not None
    final = save_checkpoint(out / "distilled", teacher, student_card)
    return DistillResult(checkpoint=final, rounds=done, steps=plans[-1].student_steps)


def _student_init(config: DistillConfig, teacher_card: ModelCard,
                  device: torch.device) -> tuple[dict[str, torch.Tensor] | None, dict[str, Any] | None]:
    """The weights and card record of ``config.student_init`` (``(None, None)`` when unset).

    Raises:
        GescoInputError: the checkpoint is not a guidance-only student of this teacher (same
            architecture, teacher training steps and guidance scale).
        CheckpointError: missing or corrupt checkpoint.
    """
    if config.student_init is None:
        return None, None
    model, card = load_checkpoint(config.student_init, map_location=device)
    d = card.distilled or {}
    problems = []
    if "samplers" not in d:
        problems.append("it is not a guidance-only student")
    if card.unet.to_dict() != teacher_card.unet.to_dict():
        problems.append("its U-Net differs from the teacher's")
    if d.get("teacher_steps") != teacher_card.training.get("steps"):
        problems.append(f"it was distilled from a teacher of {d.get('teacher_steps')} training steps, "
                        f"this one has {teacher_card.training.get('steps')}")
    if d.get("guidance_scale") != config.guidance_scale:
        problems.append(f"it folds guidance scale {d.get('guidance_scale')}, this run {config.guidance_scale}")
    if problems:
        raise GescoInputError(f"student_init {config.student_init}: " + "; ".join(problems))
    steps = card.training.get("total_steps", card.training.get("steps"))
    record = {"path": str(config.student_init), "steps": card.training.get("steps"), "total_steps": steps,
              "seed": card.training.get("seed")}
    return model.state_dict(), record


def _new_student(teacher: torch.nn.Module, teacher_card: ModelCard, config: DistillConfig, device: torch.device,
                 init_state: dict[str, torch.Tensor] | None) -> tuple[SpadeUNet, EMA, torch.optim.Optimizer]:
    """A student with the teacher's weights (or ``init_state``), its EMA and its AdamW; the
    teacher is frozen."""
    teacher.eval().requires_grad_(False)
    student = SpadeUNet(teacher_card.unet).to(device)
    student.load_state_dict(init_state if init_state is not None else teacher.state_dict())
    student.train().requires_grad_(True)
    ema = EMA(student, config.optim.ema_decay)
    return student, ema, config.optim.optimizer(student.parameters())


def _student_inputs(batch: dict[str, torch.Tensor], config: DistillConfig, cond_config: DiffusionTrainConfig,
                    grid: DistillGrid, gen: torch.Generator, device: torch.device):
    """One step's student inputs from its clean batch, every draw from ``gen`` in this order:
    noisy maps (no guidance drop), grid positions ``j`` in ``[1, N]``, noise.

    Returns:
        ``(y, j, z, t, alpha, sigma)``: conditioning, positions, ``z = alpha x0 + sigma eps``,
        the positions' time indices and coefficients, on ``device``.
    """
    n = config.noise_draws
    image, cond, has_edges = (batch[k].repeat_interleave(n, dim=0) for k in ("image", "cond", "has_edges"))
    x0 = image.to(device)
    y = conditioning_for_training(cond, has_edges, cond_config, gen).to(device)
    j = torch.randint(1, grid.steps + 1, (x0.shape[0],), generator=gen).to(device)
    noise = torch.randn(x0.shape, generator=gen).to(device)
    alpha, sigma = grid.coeffs(j, x0.dim())
    return y, j, alpha * x0 + sigma * noise, grid.time(j), alpha, sigma


def _student_step(student, ema, opt, config: DistillConfig, device, z, t, y, alpha, sigma, target, lr):
    """Student forward, distillation loss against ``target``, backward, clipping, AdamW, EMA.

    Returns:
        the losses (:func:`~gesco.diffusion.distill.distillation_loss`), their mean and the gradient norm.
    """
    set_lr(opt, lr)
    with autocast_context(device, config.amp):
        out = student(z, t, y)
    losses = distillation_loss(out.float(), z, alpha, sigma, target, config.parametrisation, config.loss_weighting)
    loss = losses["loss"].mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = torch.nn.utils.clip_grad_norm_(student.parameters(), config.optim.grad_clip)
    opt.step()
    ema.update(student)
    return losses, loss, gnorm


def _append_jsonl(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def _round_bar(plan: RoundPlan, step: int):
    from tqdm import tqdm

    return tqdm(total=plan.train_steps, initial=step, dynamic_ncols=True,
                desc=f"distill round {plan.index} ({plan.teacher_steps}->{plan.student_steps})")


def _run_round(plan, teacher, teacher_param, teacher_scale, teacher_grid, student_grid, teacher_card, config,
               device, dataset, space, cond_config, origin, round_teacher, stem, log_path, resume, progress, noisy,
               init_state=None, init=None):
    """One round: train a student from ``teacher``'s weights (or ``init_state``, a guidance-only
    student's: :meth:`DistillConfig.validate` allows it only when the guidance round is the only
    round); save its EMA weights at ``stem``."""
    c = teacher_card.unet.image_channels
    student, ema, opt = _new_student(teacher, teacher_card, config, device, init_state)
    state_path = stem.with_name(f"state-{stem.name}")
    step, wall = 0, 0.0
    if resume and state_path.with_suffix(".json").exists():
        meta = load_training_state(state_path, student, ema, opt)
        step, wall = int(meta["step"]), float(meta.get("wall_time_s", 0.0))
        print(f"round {plan.index}: resumed from {state_path} at step {step}")
    budget = config.time_budget_s_per_round
    source = StepScenes(dataset, space, config.batch_size, plan.index, config.run.seed)
    batches = step_batches(source, step, plan.train_steps, config.num_workers, pin_memory=device.type == "cuda")
    gen = torch.Generator()
    bar = _round_bar(plan, step) if progress else None

    def save(final: bool) -> None:
        ema_model = SpadeUNet(teacher_card.unet)
        ema.copy_to(ema_model)
        if final:
            save_checkpoint(stem, ema_model, _student_card(teacher_card, config, plan, student_grid, origin,
                                                           round_teacher, step, wall, noisy, init))
        else:
            save_training_state(state_path, student, ema, opt, {"step": step, "wall_time_s": wall, "round": plan.index})

    t_last = time.time()
    while step < plan.train_steps and not (budget is not None and wall >= budget):
        t0 = time.time()
        # the data order is a pure function of (round, step): a resumed round sees the same scenes
        gen.manual_seed(config.run.seed * 1_000_003 + 104_729 * plan.index + 7919 * step)
        y, j, z, t, alpha, sigma = _student_inputs(next(batches), config, cond_config, student_grid, gen, device)
        with torch.no_grad(), autocast_context(device, config.amp):
            x0_fn = x0_predictor(teacher, y, teacher_param, teacher_scale, c, config.clip_teacher)
            target = x0_fn(z, t, alpha, sigma) if plan.kind == "guidance" else two_step_target(x0_fn, z, 2 * j, teacher_grid)
        lr = config.optim.lr_at(step, plan.train_steps, progress=None if budget is None else wall / budget)
        losses, loss, gnorm = _student_step(student, ema, opt, config, device, z, t, y, alpha, sigma,
                                            target.float(), lr)
        step += 1
        wall += time.time() - t0
        if step % config.run.log_every == 0 or step == plan.train_steps:
            rec = {"round": plan.index, "student_steps": plan.student_steps, "step": step,
                   "loss": round(float(loss.detach()), 6), "mse_x0": round(float(losses["mse_x0"].detach().mean()), 6),
                   "lr": lr, "grad_norm": round(float(gnorm), 4),
                   "s_per_step": round((time.time() - t_last) / config.run.log_every, 3), "wall_time_s": round(wall, 1)}
            t_last = time.time()
            _append_jsonl(log_path, rec)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", lr=f"{lr:.1e}")
        if step % config.run.checkpoint_every == 0 and step < plan.train_steps:
            save(final=False)
    batches.close()  # stops the DataLoader workers of a round cut short by its time budget
    if bar is not None:
        bar.close()
    save(final=True)
    for suffix in (".safetensors", ".json"):  # the round is finished: its checkpoint replaces the state
        state_path.with_suffix(suffix).unlink(missing_ok=True)
    model, student_card = load_checkpoint(stem, map_location=device)
    return model, student_card
