"""Checkpoints: safetensors weights + a JSON config.

A checkpoint is a directory (or a pair of files sharing a stem)::

    <name>.safetensors   the weights (EMA weights when trained with EMA)
    <name>.json          {"format": "gesco-diffusion/1", "unet": UNetConfig, "diffusion":
                          DiffusionConfig, "class_space": str, "resolution": [H, W],
                          "conditioning": {...}, "training": {steps, data, seed, wall_time_s, ...}}

Weights are never unpickled. Loading refuses a checkpoint whose config disagrees with
the one requested, naming the field; a missing or corrupt file raises
:class:`gesco.errors.CheckpointError` naming the file and the command that makes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gesco.diffusion.gaussian import DiffusionConfig
from gesco.diffusion.unet import SpadeUNet, UNetConfig
from gesco.errors import CheckpointError

FORMAT = "gesco-diffusion/1"
TRAIN_HINT = "gesco train diffusion --config configs/diffusion_synthetic_64x128.yaml"


@dataclass
class ModelCard:
    """Everything needed to rebuild and use a trained model, stored as the checkpoint's JSON."""

    unet: UNetConfig
    diffusion: DiffusionConfig
    class_space: str = "cityscapes"
    resolution: tuple[int, int] = (64, 128)
    conditioning: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "unet": self.unet.to_dict(),
            "diffusion": self.diffusion.to_dict(),
            "class_space": self.class_space,
            "resolution": list(self.resolution),
            "conditioning": self.conditioning,
            "training": self.training,
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "checkpoint") -> "ModelCard":
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
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{source}: malformed config ({e})") from None


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, config)`` paths for a checkpoint given as a stem, a .safetensors or a .json path."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_suffix(".safetensors"), p.with_suffix(".json")


def save_checkpoint(path: str | Path, model: torch.nn.Module, card: ModelCard) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically; return the weights path."""
    w, c = checkpoint_paths(path)
    w.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp_w, tmp_c = w.with_suffix(".safetensors.tmp"), c.with_suffix(".json.tmp")
    save_file(state, str(tmp_w), metadata={"format": FORMAT})
    tmp_c.write_text(json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n")
    tmp_w.replace(w)
    tmp_c.replace(c)
    return w


def read_card(path: str | Path) -> ModelCard:
    """Read a checkpoint's JSON config."""
    _, c = checkpoint_paths(path)
    if not c.exists():
        raise CheckpointError(f"checkpoint config {c} not found; make it with `{TRAIN_HINT}`")
    try:
        d = json.loads(c.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint config {c} is not valid JSON ({e}); remake it with `{TRAIN_HINT}`") from None
    return ModelCard.from_dict(d, str(c))


def _compare(expected: dict, found: dict, prefix: str) -> None:
    for k in sorted(set(expected) | set(found)):
        if expected.get(k) != found.get(k):
            raise CheckpointError(
                f"checkpoint mismatch in {prefix}.{k}: requested {expected.get(k)!r}, checkpoint has {found.get(k)!r}"
            )


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
    w, c = checkpoint_paths(path)
    card = read_card(path)
    if expect_unet is not None:
        _compare(expect_unet.to_dict(), card.unet.to_dict(), "unet")
    if expect_class_space is not None and expect_class_space != card.class_space:
        raise CheckpointError(
            f"checkpoint mismatch in class_space: requested {expect_class_space!r}, checkpoint has {card.class_space!r}"
        )
    if expect_resolution is not None and tuple(expect_resolution) != tuple(card.resolution):
        raise CheckpointError(
            f"checkpoint mismatch in resolution: requested {tuple(expect_resolution)}, checkpoint has {tuple(card.resolution)}"
        )
    if not w.exists():
        raise CheckpointError(f"checkpoint weights {w} not found; make them with `{TRAIN_HINT}`")
    try:
        state = load_file(str(w), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint weights {w} are corrupt ({e}); remake them with `{TRAIN_HINT}`") from None
    model = SpadeUNet(card.unet)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise CheckpointError(
            f"checkpoint weights {w} do not fit its config: missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise CheckpointError(
                f"checkpoint weights {w}: tensor {k} has shape {tuple(v.shape)}, the config expects {tuple(own[k].shape)}"
            )
    model.load_state_dict(state)
    return model.to(map_location).eval(), card
