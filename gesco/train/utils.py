"""Training utilities shared by the diffusion model and the segmenter.

EMA of weights, learning-rate schedule, autocast selection, distributed (torchrun) setup,
and a resumable training state stored as safetensors + JSON (no pickles).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file


class EMA:
    """Exponential moving average of a model's parameters and buffers.

    ``ema = d * ema + (1 - d) * param`` with ``d = min(decay, (1 + n) / (10 + n))`` after
    ``n`` updates (the warm-up keeps early averages from being dominated by the random init).
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.9999, warmup: bool = True) -> None:
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.current_decay()
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if v.dtype.is_floating_point:
                s.mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                s.copy_(v)
        self.num_updates += 1

    def copy_to(self, model: torch.nn.Module) -> None:
        own = model.state_dict()
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in self.shadow.items()})


def lr_at(
    step: int,
    base_lr: float,
    warmup: int,
    total: int,
    schedule: str = "cosine",
    final_frac: float = 0.1,
    progress: float | None = None,
) -> float:
    """Linear warm-up over ``warmup`` steps, then constant or cosine decay to ``final_frac * base_lr``.

    The decay follows ``(step - warmup) / (total - warmup)``, or ``progress`` in ``[0, 1]`` when
    given (a wall-clock budget: the fraction of the budget spent).
    """
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    if schedule == "constant" or (progress is None and total <= warmup):
        return base_lr
    if progress is not None:
        p = min(1.0, max(0.0, progress))
    else:
        p = min(1.0, (step - warmup) / max(1, total - warmup))
    return base_lr * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def autocast_context(device: torch.device, mode: str = "auto"):
    """bf16 autocast on CUDA (``mode="auto"``/``"bf16"``), fp16 on request, none on CPU."""
    if device.type == "cuda" and mode in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cuda" and mode == "fp16":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(device.type, enabled=False)


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the process group when launched by ``torchrun`` (env ``WORLD_SIZE`` > 1).

    Backend: NCCL with CUDA, gloo otherwise. Single-process runs return rank 0 of 1.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local)


def save_training_state(
    path: Path, model: torch.nn.Module, ema: EMA | None, optimizer: torch.optim.Optimizer, meta: dict
) -> None:
    """Everything needed to resume: weights, EMA, AdamW moments (safetensors) and counters (JSON)."""
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    if ema is not None:
        for k, v in ema.shadow.items():
            tensors[f"ema.{k}"] = v.cpu().contiguous()
    opt_state = optimizer.state_dict()
    for pid, st in opt_state["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val):
                tensors[f"opt.{pid}.{name}"] = val.detach().cpu().contiguous().reshape(val.shape)
    meta = dict(meta)
    meta["ema_updates"] = ema.num_updates if ema is not None else 0
    meta["opt_param_groups"] = [{k: v for k, v in g.items() if k != "params"} for g in opt_state["param_groups"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path.with_suffix(".safetensors"))
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_training_state(
    path: Path, model: torch.nn.Module, ema: EMA | None, optimizer: torch.optim.Optimizer
) -> dict:
    """Inverse of :func:`save_training_state`; returns the JSON metadata."""
    tensors = load_file(str(path.with_suffix(".safetensors")))
    meta = json.loads(path.with_suffix(".json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.shadow = {k[4:]: v.float() for k, v in tensors.items() if k.startswith("ema.")}
        ema.num_updates = int(meta.get("ema_updates", 0))
    opt_sd = optimizer.state_dict()
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    groups = []
    for g, saved in zip(opt_sd["param_groups"], meta.get("opt_param_groups", [])):
        g = dict(g)
        g.update(saved)
        groups.append(g)
    optimizer.load_state_dict({"state": state, "param_groups": groups or opt_sd["param_groups"]})
    return meta
