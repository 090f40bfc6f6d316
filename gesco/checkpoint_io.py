"""Checkpoint files shared by every gesco model: safetensors weights + a JSON card.

A checkpoint is a pair of files sharing a stem, ``<stem>.safetensors`` (the weights,
never a pickle) and ``<stem>.json`` (the model card: architecture, class space,
resolution, training record). The model-specific modules
(:mod:`gesco.diffusion.checkpoint`, :mod:`gesco.segment.checkpoint`) define their cards
and call these functions, so both kinds of checkpoint fail the same way: a missing or
corrupt file raises :class:`gesco.errors.CheckpointError` naming the file and the command
that makes it; a mismatch names the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gesco.errors import CheckpointError


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, card)`` paths of a checkpoint given as a stem, a .safetensors or a .json path."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def write_checkpoint(path: str | Path, model: torch.nn.Module, card: dict[str, Any], fmt: str) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json``, each atomically; return the weights path."""
    w, c = checkpoint_paths(path)
    w.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp_w, tmp_c = w.with_name(w.name + ".tmp"), c.with_name(c.name + ".tmp")
    save_file(state, str(tmp_w), metadata={"format": fmt})
    tmp_c.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    tmp_w.replace(w)
    tmp_c.replace(c)
    return w


def read_card_json(path: str | Path, what: str, hint: str) -> tuple[dict, Path]:
    """The card of a checkpoint as a dict, and its path; ``what`` names the model in errors."""
    _, c = checkpoint_paths(path)
    if not c.exists():
        raise CheckpointError(f"{what} checkpoint config {c} not found; make it with `{hint}`")
    try:
        return json.loads(c.read_text()), c
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{what} checkpoint config {c} is not valid JSON ({e}); remake it with `{hint}`") from None


def check_field(name: str, requested: Any, found: Any, source: Path | str) -> None:
    """Refuse a checkpoint whose field ``name`` differs from the requested value."""
    if requested != found:
        raise CheckpointError(f"checkpoint {source} mismatch in {name}: requested {requested!r}, checkpoint has {found!r}")


def check_fields(prefix: str, requested: dict, found: dict, source: Path | str) -> None:
    """:func:`check_field` for every key of two config dicts."""
    for k in sorted(set(requested) | set(found)):
        check_field(f"{prefix}.{k}", requested.get(k), found.get(k), source)


def check_expected(
    source: Path | str,
    card: Any,
    arch_field: str,
    expect_arch: Any | None = None,
    expect_class_space: str | None = None,
    expect_resolution: tuple[int, int] | None = None,
) -> None:
    """Refuse a card that differs from what the caller expects (``None``: anything goes).

    Args:
        source: the card's path, for the message.
        card: a model card with ``class_space``, ``resolution`` and the architecture config
            in the attribute ``arch_field`` (``"unet"``, ``"model"``).
        expect_arch: the expected architecture config (a ``ConfigBase``), compared field by field.
    Raises:
        CheckpointError: naming the first differing field.
    """
    if expect_arch is not None:
        check_fields(arch_field, expect_arch.to_dict(), getattr(card, arch_field).to_dict(), source)
    if expect_class_space is not None:
        check_field("class_space", expect_class_space, card.class_space, source)
    if expect_resolution is not None:
        check_field("resolution", tuple(expect_resolution), tuple(card.resolution), source)


def load_weights(
    model: torch.nn.Module, path: str | Path, what: str, hint: str, map_location: str | torch.device = "cpu"
) -> torch.nn.Module:
    """Load ``<stem>.safetensors`` into ``model`` after checking every name and shape."""
    w, _ = checkpoint_paths(path)
    if not w.exists():
        raise CheckpointError(f"{what} checkpoint weights {w} not found; make them with `{hint}`")
    try:
        state = load_file(str(w), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{what} checkpoint weights {w} are corrupt ({e}); remake them with `{hint}`") from None
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or extra:
        raise CheckpointError(
            f"{what} checkpoint weights {w} do not fit its config: missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise CheckpointError(
                f"{what} checkpoint weights {w}: tensor {k} has shape {tuple(v.shape)}, "
                f"the config expects {tuple(own[k].shape)}"
            )
    model.load_state_dict(state)
    return model.to(map_location).eval()


@dataclass(frozen=True)
class CheckpointKind:
    """What distinguishes one kind of gesco checkpoint from another (diffusion model, segmenter).

    Attributes:
        what: the model's name in error messages (``"diffusion"``, ``"segmenter"``).
        hint: the command that makes such a checkpoint (named by every error).
        card_from_dict: ``(dict, source) -> card``, validating the JSON card.
        arch_field: the card's attribute holding the architecture config (``"unet"``, ``"model"``).
        build: ``card -> module`` with the card's architecture and untrained weights.
    """

    what: str
    hint: str
    card_from_dict: Callable[[dict, str], Any]
    arch_field: str
    build: Callable[[Any], torch.nn.Module]


def read_model_card(kind: CheckpointKind, path: str | Path) -> Any:
    """The validated card of a checkpoint of ``kind`` (:class:`CheckpointError` naming the file)."""
    d, c = read_card_json(path, kind.what, kind.hint)
    return kind.card_from_dict(d, str(c))


def load_model(
    kind: CheckpointKind,
    path: str | Path,
    expect_arch: Any | None = None,
    expect_class_space: str | None = None,
    expect_resolution: tuple[int, int] | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[torch.nn.Module, Any]:
    """The one checkpoint loader: read and check the card, build the model, load its weights.

    Args:
        kind: the checkpoint's :class:`CheckpointKind`.
        path: checkpoint stem or one of its two files.
        expect_arch, expect_class_space, expect_resolution: when given, must match the card
            (:func:`check_expected`).
        map_location: where the weights are loaded.
    Returns:
        ``(model in eval mode, card)``.
    Raises:
        CheckpointError: missing or corrupt files, a mismatched field, or weights whose
            names / shapes differ from the architecture's.
    """
    card = read_model_card(kind, path)
    _, source = checkpoint_paths(path)
    check_expected(source, card, kind.arch_field, expect_arch, expect_class_space, expect_resolution)
    model = load_weights(kind.build(card), path, kind.what, kind.hint, map_location)
    return model, card
