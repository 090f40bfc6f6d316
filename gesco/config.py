"""Config files (YAML or JSON) with ``--set key.sub=value`` command-line overrides."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from gesco.errors import GescoInputError


def load_config_file(path: str | Path | None) -> dict[str, Any]:
    """Read a YAML/JSON mapping; ``None`` gives an empty mapping."""
    if path is None:
        return {}
    p = Path(path)
    if not p.exists():
        raise GescoInputError(f"config file {p} not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise GescoInputError(f"config file {p} is not valid YAML/JSON: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GescoInputError(f"config file {p} must hold a mapping, got {type(data).__name__}")
    return data


# YAML 1.1 (PyYAML) reads "2e-4" as a string: it wants a dot ("2.0e-4"). Overrides typed on a
# command line should not depend on that.
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _parse_value(raw: str) -> Any:
    """An override's value as YAML, with ``1e-4``-style numbers read as floats."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    return value


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; values are parsed as YAML (numbers, lists, booleans)."""
    out = json.loads(json.dumps(config))
    for item in overrides:
        if "=" not in item:
            raise GescoInputError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        value = _parse_value(raw)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise GescoInputError(f"override {item!r}: {p} is not a mapping")
        node[parts[-1]] = value
    return out


def add_config_arguments(parser, example: str) -> None:
    """The options every ``gesco train MODEL`` shares: ``--config``, ``--set``, ``--no-resume``, ``--no-progress``."""
    parser.add_argument("--config", help="YAML/JSON config (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config field, e.g. {example}")
    parser.add_argument("--no-resume", action="store_true", help="start over even if the output folder holds a state")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args, config_cls, what: str):
    """Build ``config_cls`` from ``--config`` and ``--set``; a bad field is a :class:`GescoInputError`.

    A field that moved into a nested config (``config_cls.moved_fields``, e.g. ``lr`` ->
    ``optim.lr``) may be named either way, in the file and in ``--set``: the file's old keys are
    moved first, then each override under its new name, so ``--set lr=...`` overrides a file's
    ``optim: {lr: ...}`` and ``--set optim.lr=...`` an old file's ``lr``.
    """
    moved: dict[str, str] = getattr(config_cls, "moved_fields", {})
    overrides = []
    for item in args.overrides:
        key, sep, value = item.partition("=")
        overrides.append(f"{moved.get(key.strip(), key.strip())}{sep}{value}" if sep else item)
    raw = load_config_file(args.config)
    try:
        if moved:
            raw = config_cls._move_flat_fields(raw)
        return config_cls.from_dict(apply_overrides(raw, overrides))
    except (TypeError, ValueError) as e:
        raise GescoInputError(f"bad {what} config: {e}") from None
