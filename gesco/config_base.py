"""One base for the configuration dataclasses: dict round trips with unknown fields refused.

Every component's settings (the U-Net, the diffusion, the noisy maps, the trainers, the
segmenter) is a dataclass inheriting :class:`ConfigBase`, which gives it

* ``to_dict()``: a JSON-ready mapping (nested configs as mappings, tuples as lists), what
  checkpoints and training logs record;
* ``from_dict(d)``: the inverse; a key that is not a field raises ``ValueError`` naming it,
  nested configs are built from their mappings with their own ``from_dict`` (also inside
  ``Optional[...]``), and lists become tuples where the field is a tuple.

A class may set ``config_name`` (used in the error message) and override ``check()``, which
``from_dict`` calls on the result.

A nested config given as a mapping changes only the keys it names: the others keep the
*field's* default (a trainer's ``optim`` defaults to its own learning rate and EMA decay, not
to :class:`OptimiserConfig`'s class defaults). ``moved_fields`` (``{"lr": "optim.lr"}``) lets a
class read mappings written before a field moved into a nested config: the old flat key is
moved to its new place, and giving both is an error naming them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, TypeVar, Union

C = TypeVar("C", bound="ConfigBase")


def _to_plain(value: Any) -> Any:
    if isinstance(value, ConfigBase):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _strip_optional(tp: Any) -> Any:
    """``X | None`` / ``Optional[X]`` -> ``X``; anything else unchanged."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _from_plain(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    tp = _strip_optional(tp)
    if isinstance(tp, type) and issubclass(tp, ConfigBase) and isinstance(value, dict):
        return tp.from_dict(value)
    if typing.get_origin(tp) is tuple and isinstance(value, list):
        return tuple(value)
    return value


def _field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None if f.default is dataclasses.MISSING else f.default


class ConfigBase:
    """Mixin for ``@dataclass`` configuration classes (see the module docstring)."""

    #: how the class is named in error messages (default: the class name)
    config_name: ClassVar[str] = ""
    #: old flat keys read into nested configs: ``{"lr": "optim.lr"}`` (see the module docstring)
    moved_fields: ClassVar[dict[str, str]] = {}

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        if not isinstance(d, dict):
            raise ValueError(f"{cls.config_name or cls.__name__} must be a mapping, got {type(d).__name__}")
        d = cls._move_flat_fields(d)
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(d) - set(fields)
        if unknown:
            raise ValueError(f"unknown {cls.config_name or cls.__name__} fields {sorted(unknown)}")
        hints = typing.get_type_hints(cls)
        values = {}
        for k, v in d.items():
            default = _field_default(fields[k])
            if isinstance(default, ConfigBase) and isinstance(v, dict):
                v = {**default.to_dict(), **v}  # the keys not given keep the field's default
            values[k] = _from_plain(hints.get(k), v)
        config = cls(**values)
        config.check()
        return config

    @classmethod
    def _move_flat_fields(cls, d: dict[str, Any]) -> dict[str, Any]:
        """``d`` with each old flat key of :attr:`moved_fields` moved to its nested place."""
        if not cls.moved_fields or not set(d) & set(cls.moved_fields):
            return d
        out = dict(d)
        for old, new in cls.moved_fields.items():
            if old not in out:
                continue
            parent, key = new.split(".")
            nested = out.get(parent)
            nested = {} if nested is None else nested
            if not isinstance(nested, dict):
                raise ValueError(f"{cls.config_name or cls.__name__}: {parent} must be a mapping, got {nested!r}")
            if key in nested:
                raise ValueError(f"{cls.config_name or cls.__name__}: both {old} and {new} are set; "
                                 f"{old} is the old name of {new}, keep one")
            out[parent] = {**nested, key: out.pop(old)}
        return out

    def check(self) -> None:
        """Cross-field checks run by :meth:`from_dict` (none by default)."""
