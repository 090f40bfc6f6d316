"""Frames with oversized fields, driven by the proto descriptors (for the fuzz test and bench/).

:func:`oversize_targets` lists, for a root message (``SemanticFrame`` for the channel,
``ReceivedFrame`` for the receiver), every way one of its variable-size fields (nested
ones included, found by walking the descriptors like :mod:`gesco.wire.bounds`) can exceed
its bound: too many entries (``repeated`` / ``map``), a value too long (``string`` /
``bytes``, an element of a repeated string, a map key or value). A field added to
``gesco.proto`` becomes a target without editing this module. :func:`apply_oversize`
makes a copy of a valid message with one target ``excess`` over its bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gesco.wire.bounds import FieldBound, field_key, needs_bound

_TEXT = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)


@dataclass(frozen=True)
class Target:
    """One way to exceed one field's bound.

    Attributes:
        path: attribute names from the root message to the field (``("header", "upload", "notes")``).
        mode: ``"items"`` (too many entries), ``"bytes"`` (a value too long; for a repeated
            string one element), ``"key"`` / ``"value"`` (a map entry's key / value too long).
        key: the bounds-table key of the bound exceeded (``"UploadInfo.notes"``).
    """

    path: tuple[str, ...]
    mode: str
    key: str

    @property
    def name(self) -> str:
        return ".".join(self.path) + ("" if self.mode in ("items", "bytes") else f"[{self.mode}]") + f" ({self.mode})"


def oversize_targets(root: Descriptor) -> list[Target]:
    """Every :class:`Target` of ``root`` and the messages it contains (see the module docstring)."""
    out: list[Target] = []

    def walk(desc: Descriptor, prefix: tuple[str, ...], seen: tuple[str, ...]) -> None:
        for field in desc.fields:
            path = (*prefix, field.name)
            is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
            if needs_bound(field):
                if field.is_repeated:
                    out.append(Target(path, "items", field_key(field)))
                if is_map:
                    entry = field.message_type
                    for part in ("key", "value"):
                        sub = entry.fields_by_name[part]
                        if sub.type in _TEXT:
                            out.append(Target(path, part, field_key(sub)))
                elif field.type in _TEXT:
                    out.append(Target(path, "bytes", field_key(field)))
            if field.message_type is not None and not is_map and field.message_type.full_name not in seen:
                walk(field.message_type, path, (*seen, field.message_type.full_name))

    walk(root, (), (root.full_name,))
    return out


#: most entries added past a bound: more cost the client (building a Python list or map of
#: millions of entries) far more than the server, which refuses them by count
MAX_EXTRA_ITEMS = 1_000_000
MAX_EXTRA_MAP_ENTRIES = 20_000


def _too_long(field: FieldDescriptor, size: int) -> str | bytes:
    return b"\x01" * size if field.type == FieldDescriptor.TYPE_BYTES else "s" * size


def apply_oversize(message: Message, target: Target, bounds: Mapping[str, FieldBound], excess: int = 1) -> Message:
    """A copy of ``message`` with ``target`` ``excess`` (>= 1) entries / bytes over its bound
    (entries: at most :data:`MAX_EXTRA_ITEMS`, map entries :data:`MAX_EXTRA_MAP_ENTRIES`)."""
    out = type(message)()
    out.CopyFrom(message)
    holder = out
    for name in target.path[:-1]:
        holder = getattr(holder, name)
    field = holder.DESCRIPTOR.fields_by_name[target.path[-1]]
    container = getattr(holder, field.name)
    bound = bounds[target.key]
    if target.mode == "items":
        is_map = field.message_type is not None
        excess = min(excess, MAX_EXTRA_MAP_ENTRIES if is_map else MAX_EXTRA_ITEMS)
        n = bound.max_items + excess - len(container)
        if is_map:
            for i in range(len(container), len(container) + n):
                container[f"k{i}"] = "1"
        elif field.type in _TEXT:
            container.extend([_too_long(field, 1)] * n)
        else:
            container.extend([1] * n)
    elif target.mode == "bytes":
        value = _too_long(field, bound.max_bytes + excess)
        if field.is_repeated:
            container.append(value)
        else:
            setattr(holder, field.name, value)
    else:  # a map key or value
        sub = field.message_type.fields_by_name[target.mode]
        big = _too_long(sub, bound.max_bytes + excess)
        if target.mode == "key":
            container[big] = "1"
        else:
            container["k"] = big
    return out
