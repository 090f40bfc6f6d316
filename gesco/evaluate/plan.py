"""The rows of one evaluation and what each needs: :class:`RowPlan` (checkpoint, channel,
sampler, cost; ``missing`` when its checkpoint does not exist), the run's resolution, and
what a stored row's results depend on (:func:`row_meta`, checked when a run resumes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gesco.channel import validate_channel_params
from gesco.diffusion.checkpoint import read_card
from gesco.diffusion.pipeline import recommended_mean_temperature, sampling_cost
from gesco.errors import CheckpointError
from gesco.evaluate.config import EvalConfig
from gesco.evaluate.methods import (
    CHECKPOINT_ROLES,
    Method,
    checkpoint_exists,
    checkpoint_path,
)
from gesco.evaluate.scoring import file_digest

#: resolution when no diffusion checkpoint is available (only the real / full-image rows)
FALLBACK_RESOLUTION = (64, 128)


# --------------------------------------------------------------------------- rows and their status
@dataclass
class RowPlan:
    """A row of this run and whether it can be evaluated.

    ``status`` is ``"ok"`` or ``"missing"`` (its checkpoint file does not exist; ``command``
    makes it). ``sampler``, ``steps``, ``nfe`` (network forwards per image) and
    ``passes`` (forwards times images per forward) are set for semantic rows, as is
    ``mean_temperature`` (the run's ``--mean-temperature``, else the checkpoint card's
    recommendation, else 1: :func:`gesco.diffusion.pipeline.recommended_mean_temperature`).
    """

    method: Method
    status: str = "ok"
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    checkpoint_training: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    channel: str | None = None
    sampler: str | None = None
    steps: int | None = None
    nfe: int | None = None
    passes: int | None = None
    mean_temperature: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["method"] = self.method.to_dict()
        return d


def row_guidance(method: Method, config: EvalConfig) -> float:
    """The guidance scale a row samples with: its own, else the run's ``--guidance``."""
    return float(config.guidance_scale if method.guidance_scale is None else method.guidance_scale)


def plan_rows(methods: list[Method], config: EvalConfig) -> list[RowPlan]:
    """Resolve each row's checkpoint, channel and sampler; mark rows whose checkpoint is missing."""
    plans = []
    for m in methods:
        plan = RowPlan(m, channel=m.channel or config.channel)
        if m.generative:
            role = CHECKPOINT_ROLES[m.checkpoint]  # type: ignore[index]
            path = checkpoint_path(role.role, config.checkpoints)
            plan.checkpoint = str(path)
            plan.sampler = m.sampler or config.sampler
            plan.steps = int(m.steps or config.steps)
            exists = checkpoint_exists(path)
            card = read_card(path) if exists else None
            # a distilled student has the guidance folded in: one pass per step at its scale
            cost = sampling_cost(card, plan.sampler, plan.steps, row_guidance(m, config))
            plan.nfe, plan.passes = cost.forwards, cost.passes
            if plan.sampler == "ancestral":
                plan.steps = cost.forwards  # the whole chain, T steps
            plan.mean_temperature = (config.mean_temperature if config.mean_temperature is not None
                                     else recommended_mean_temperature(card))
            if exists:
                plan.checkpoint_sha256 = file_digest(path)
            else:
                plan.status = "missing"
                plan.command = role.command if role.role not in config.checkpoints else (
                    f"(the file given with --checkpoint {role.role}=... does not exist); default: {role.command}")
        plans.append(plan)
    return plans


def resolve_resolution(plans: list[RowPlan], config: EvalConfig) -> tuple[int, int]:
    """The evaluation's ``(H, W)``: ``config.resolution`` or the (common) one of the checkpoints."""
    found: dict[tuple[int, int], str] = {}
    for p in plans:
        if p.status == "ok" and p.checkpoint:
            card = read_card(p.checkpoint)
            found.setdefault(tuple(int(v) for v in card.resolution), p.checkpoint)  # type: ignore[arg-type]
            p.checkpoint_training = {k: card.training.get(k) for k in ("steps", "name", "noisy", "wall_time_s")
                                     if k in card.training}
    if config.resolution is not None:
        res = tuple(int(v) for v in config.resolution)
        wrong = {r: c for r, c in found.items() if r != res}
        if wrong:
            raise CheckpointError(f"--resolution {res} differs from the checkpoints' {wrong}")
        return res  # type: ignore[return-value]
    if len(found) > 1:
        raise CheckpointError(f"the checkpoints have different resolutions: {found}; evaluate them separately")
    return next(iter(found)) if found else FALLBACK_RESOLUTION




def row_channel_params(config: EvalConfig, plan: RowPlan) -> dict[str, Any]:
    """The run's channel parameters, for rows on the run's channel (a row's own preset takes its defaults)."""
    return dict(config.channel_params) if (plan.channel or config.channel) == config.channel else {}


def row_meta(plan: RowPlan, config: EvalConfig) -> dict[str, Any]:
    """What a stored row's results depend on (checked when a run resumes into the same folder)."""
    meta = {"method": plan.method.to_dict(), "channel": plan.channel, "sampler": plan.sampler, "steps": plan.steps,
            "checkpoint_sha256": plan.checkpoint_sha256}
    params = row_channel_params(config, plan)
    # recorded only when they matter, so that stores made before channel parameters existed still resume
    if plan.method.digital or params != validate_channel_params(plan.channel or config.channel, {}):
        meta["channel_params"] = params
    # recorded only when not the paper's 1, so that stores made before the mean temperature existed still resume
    if plan.mean_temperature is not None and plan.mean_temperature != 1.0:
        meta["mean_temperature"] = plan.mean_temperature
    if plan.method.digital:
        meta |= {"ldpc_iterations": config.ldpc_iterations, "mcs_gap_db": config.mcs_gap_db,
                 "digital_budget": config.digital_budget}
    return meta
