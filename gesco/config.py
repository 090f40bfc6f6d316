"""Config files (YAML or JSON) with ``--set key.sub=value`` command-line overrides."""

from __future__ import annotations

import json
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


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; values are parsed as YAML (numbers, lists, booleans)."""
    out = json.loads(json.dumps(config))
    for item in overrides:
        if "=" not in item:
            raise GescoInputError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise GescoInputError(f"override {item!r}: {p} is not a mapping")
        node[parts[-1]] = value
    return out
