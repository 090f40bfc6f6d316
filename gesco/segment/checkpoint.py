"""Segmenter checkpoints: safetensors weights + a JSON model card.

A checkpoint is a pair of files sharing a stem::

    <name>.safetensors   the weights of :class:`SegmenterNet` (EMA weights when trained with EMA)
    <name>.json          {"format": "gesco-segmenter/1", "model": SegmenterConfig,
                          "class_space": str, "resolution": [H, W],
                          "training": {steps, data, seed, wall_time_s, config, ...},
                          "evaluation": {split, scenes, miou, per_class, ...}}

Weights are never unpickled. A missing or corrupt file raises
:class:`gesco.errors.CheckpointError` naming the file and the command that makes it;
a checkpoint whose config disagrees with the requested one is refused, naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gesco.checkpoint_io import CheckpointKind, checkpoint_paths, load_model, read_model_card, write_checkpoint
from gesco.errors import CheckpointError
from gesco.segment.model import SegmenterConfig, SegmenterNet

FORMAT = "gesco-segmenter/1"
TRAIN_HINT = "gesco train segmenter --config configs/segmenter_synthetic_64x128.yaml"


@dataclass
class SegmenterCard:
    """Everything needed to rebuild and use a trained segmenter (the checkpoint's JSON)."""

    model: SegmenterConfig
    class_space: str = "cityscapes"
    resolution: tuple[int, int] = (64, 128)
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "model": self.model.to_dict(),
            "class_space": self.class_space,
            "resolution": list(self.resolution),
            "training": self.training,
            "evaluation": self.evaluation,
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "checkpoint") -> SegmenterCard:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise CheckpointError(f"{source}: format {found!r} is not {FORMAT!r}")
        try:
            res = tuple(int(v) for v in d["resolution"])
            if len(res) != 2:
                raise ValueError(f"resolution must be [H, W], got {d['resolution']}")
            return cls(
                model=SegmenterConfig.from_dict(d["model"]),
                class_space=str(d["class_space"]),
                resolution=res,  # type: ignore[arg-type]
                training=d.get("training", {}),
                evaluation=d.get("evaluation", {}),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{source}: malformed config ({e})") from None


def save_checkpoint(path: str | Path, model: SegmenterNet, card: SegmenterCard) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` (each atomically); return the weights path."""
    return write_checkpoint(path, model, card.to_dict(), FORMAT)


#: the segmenter's kind of checkpoint, for :func:`gesco.checkpoint_io.load_model`
KIND = CheckpointKind(what="segmenter", hint=TRAIN_HINT, card_from_dict=SegmenterCard.from_dict, arch_field="model",
                      build=lambda card: SegmenterNet(card.model))


def read_card(path: str | Path) -> SegmenterCard:
    """Read a checkpoint's JSON model card."""
    return read_model_card(KIND, path)


def update_card(path: str | Path, **changes: Any) -> SegmenterCard:
    """Rewrite fields of a checkpoint's JSON (e.g. ``evaluation=...``), keeping the weights."""
    card = read_card(path)
    for k, v in changes.items():
        if not hasattr(card, k):
            raise CheckpointError(f"segmenter card has no field {k!r}")
        setattr(card, k, v)
    _, c = checkpoint_paths(path)
    tmp = c.with_name(c.name + ".tmp")
    tmp.write_text(json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n")
    tmp.replace(c)
    return card


def load_checkpoint(
    path: str | Path,
    expect_model: SegmenterConfig | None = None,
    expect_class_space: str | None = None,
    expect_resolution: tuple[int, int] | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[SegmenterNet, SegmenterCard]:
    """Build the network of a checkpoint and load its weights.

    Args:
        path: checkpoint stem or one of its two files.
        expect_model, expect_class_space, expect_resolution: when given, must match the
            checkpoint; otherwise :class:`CheckpointError` names the differing field.
    Returns:
        ``(network in eval mode, card)``.
    """
    return load_model(KIND, path, expect_model, expect_class_space, expect_resolution, map_location)
