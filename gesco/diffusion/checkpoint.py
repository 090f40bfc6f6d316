"""Checkpoints: safetensors weights + a JSON config.

A checkpoint is a directory (or a pair of files sharing a stem)::

    <name>.safetensors   the weights (EMA weights when trained with EMA)
    <name>.json          {"format": "gesco-diffusion/1", "unet": UNetConfig, "diffusion":
                          DiffusionConfig, "class_space": str, "resolution": [H, W],
                          "conditioning": {...}, "training": {steps, data, seed, wall_time_s, ...},
                          "distilled": {...}}   (only in distilled students, see below)

A distilled student (``gesco train distill``, :mod:`gesco.diffusion.distill`) has the same
U-Net and diffusion fields as its teacher plus ``"distilled": {"steps": N, "guidance_scale":
s, "parametrisation": "v", "teacher": path, "timesteps": [...], ...}``: the pipeline then
samples it only with the ``"distilled"`` sampler at ``N`` steps and scale ``s``. Cards
without the key (every ordinary checkpoint) load and write exactly as before.

Weights are never unpickled. Loading refuses a checkpoint whose config disagrees with
the one requested, naming the field; a missing or corrupt file raises
:class:`gesco.errors.CheckpointError` naming the file and the command that makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gesco.checkpoint_io import CheckpointKind, load_model, read_model_card, write_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig
from gesco.diffusion.unet import SpadeUNet, UNetConfig
from gesco.errors import CheckpointError
from gesco.sampler_specs import GUIDANCE_ONLY_SAMPLERS, PARAMETRISATIONS

FORMAT = "gesco-diffusion/1"
TRAIN_HINT = ("gesco train diffusion --config configs/diffusion_synthetic_64x128.yaml (the guided model), then "
              "gesco train distill --config configs/distill_guidance_synthetic_64x128.yaml (its student, the receiver's "
              "default; docs/distillation.md)")


@dataclass
class ModelCard:
    """Everything needed to rebuild and use a trained model, stored as the checkpoint's JSON."""

    unet: UNetConfig
    diffusion: DiffusionConfig
    class_space: str = "cityscapes"
    resolution: tuple[int, int] = (64, 128)
    conditioning: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    #: ``None`` for an ordinary checkpoint; a distilled student's record otherwise
    #: (:data:`DISTILLED_KEYS` at least).
    distilled: dict[str, Any] | None = None

    def to_dict(self) -> dict:
        d = {
            "format": FORMAT,
            "unet": self.unet.to_dict(),
            "diffusion": self.diffusion.to_dict(),
            "class_space": self.class_space,
            "resolution": list(self.resolution),
            "conditioning": self.conditioning,
            "training": self.training,
        }
        if self.distilled is not None:
            d["distilled"] = self.distilled
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "checkpoint") -> ModelCard:
        if d.get("format") != FORMAT:
            raise CheckpointError(f"{source}: format {d.get('format')!r} is not {FORMAT!r}")
        try:
            return cls(
                unet=UNetConfig.from_dict(d["unet"]),
                diffusion=DiffusionConfig.from_dict(d["diffusion"]),
                class_space=d["class_space"],
                resolution=tuple(d["resolution"]),
                conditioning=d.get("conditioning", {}),
                training=d.get("training", {}),
                distilled=_check_distilled(d.get("distilled"), source),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{source}: malformed config ({e})") from None


#: fields every ``"distilled"`` record has
DISTILLED_KEYS = ("steps", "guidance_scale", "parametrisation", "teacher")


def _check_distilled(rec: Any, source: str) -> dict[str, Any] | None:
    """The ``"distilled"`` record of a card, checked (``None`` when absent)."""
    if rec is None:
        return None
    if not isinstance(rec, dict) or any(k not in rec for k in DISTILLED_KEYS):
        raise CheckpointError(f"{source}: malformed 'distilled' record {rec!r}; needs {', '.join(DISTILLED_KEYS)}")
    steps, param = rec["steps"], rec["parametrisation"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise CheckpointError(f"{source}: distilled.steps must be a positive int, got {steps!r}")
    if param not in PARAMETRISATIONS:
        raise CheckpointError(f"{source}: distilled.parametrisation {param!r} is not one of {', '.join(PARAMETRISATIONS)}")
    samplers = rec.get("samplers")
    if samplers is not None:  # a guidance-only student: ordinary epsilon samplers at any step count
        if not isinstance(samplers, list) or not samplers or any(x not in GUIDANCE_ONLY_SAMPLERS for x in samplers):
            raise CheckpointError(f"{source}: distilled.samplers must list some of {', '.join(GUIDANCE_ONLY_SAMPLERS)}, "
                                  f"got {samplers!r}")
        if param != "eps":
            raise CheckpointError(f"{source}: a guidance-only student (distilled.samplers) predicts eps, got {param!r}")
    ts = rec.get("timesteps")
    if ts is not None and (not isinstance(ts, list) or len(ts) != steps):
        raise CheckpointError(f"{source}: distilled.timesteps must list {steps} time indices, got {ts!r}")
    return rec


def save_checkpoint(path: str | Path, model: torch.nn.Module, card: ModelCard) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically; return the weights path."""
    return write_checkpoint(path, model, card.to_dict(), FORMAT)


#: the diffusion model's kind of checkpoint, for :func:`gesco.checkpoint_io.load_model`
KIND = CheckpointKind(what="diffusion", hint=TRAIN_HINT, card_from_dict=ModelCard.from_dict, arch_field="unet",
                      build=lambda card: SpadeUNet(card.unet))


def read_card(path: str | Path) -> ModelCard:
    """Read a checkpoint's JSON config."""
    return read_model_card(KIND, path)


def load_checkpoint(
    path: str | Path,
    expect_unet: UNetConfig | None = None,
    expect_class_space: str | None = None,
    expect_resolution: tuple[int, int] | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[SpadeUNet, ModelCard]:
    """Build the U-Net of a checkpoint and load its weights.

    Args:
        path: checkpoint stem or one of its two files.
        expect_unet, expect_class_space, expect_resolution: when given, must match the
            checkpoint; otherwise :class:`CheckpointError` names the differing field.
    Returns:
        ``(model in eval mode, card)``.
    """
    return load_model(KIND, path, expect_unet, expect_class_space, expect_resolution, map_location)
