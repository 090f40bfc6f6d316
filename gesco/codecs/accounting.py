"""Exact bit accounting of a frame: payload bits and header bits.

Bits are counted on the serialized protobuf, so the count is what actually crosses
the wire, byte for byte:

* ``payload_bits = 8 * len(frame.payload)``;
* ``header_bits`` = every other serialized bit: ``8 * len(header.SerializeToString())``
  where ``header`` is the frame with the payload cleared (id, shape, class ids, class
  space, codec name and parameters, power scale, ... with protobuf's own tag and length
  bytes), plus the payload field's tag and length bytes (2-4 bytes), so that
  ``payload_bits + header_bits == 8 * len(frame.SerializeToString())`` exactly.
  Fields at their default value (0, "", false) are not serialized and cost nothing,
  which is also true on the wire.

The simulator also carries, in the same message, numbers that a real link would not
send: the sizes of the image as PNG/JPEG (for the comparison) and the receiver's
sampling settings, how the upload was prepared (``SIMULATION_FIELDS``). By default they are left out of
``header_bits``; ``include_simulation_fields=True`` counts them too (the size of the
whole message minus the payload).

The functions take the message duck-typed (anything with protobuf's ``CopyFrom``,
``ClearField``, ``SerializeToString``), so this module does not import ``gesco.wire``.
"""

from __future__ import annotations

from typing import Any

#: SemanticFrame fields that only serve the simulation (not sent by a real sender)
SIMULATION_FIELDS: tuple[str, ...] = ("png_bits", "jpeg_bits", "jpeg_quality", "transmit", "upload")


def header_message(frame: Any, include_simulation_fields: bool = False) -> Any:
    """A copy of ``frame`` without payload (and, by default, without the simulation fields)."""
    header = _counted_message(frame, include_simulation_fields)
    header.ClearField("payload")
    return header


def _counted_message(frame: Any, include_simulation_fields: bool) -> Any:
    """A copy of ``frame`` holding the fields that are counted (payload included)."""
    msg = type(frame)()
    msg.CopyFrom(frame)
    if not include_simulation_fields:
        for name in SIMULATION_FIELDS:
            msg.ClearField(name)
    return msg


def frame_bits(frame: Any, include_simulation_fields: bool = False) -> tuple[int, int]:
    """``(payload_bits, header_bits)`` of a ``SemanticFrame``, see the module docstring.

    ``payload_bits + header_bits`` is the size of the serialized frame (without the
    simulation fields unless ``include_simulation_fields``).
    """
    payload_bits = 8 * len(frame.payload)
    total_bits = 8 * len(_counted_message(frame, include_simulation_fields).SerializeToString())
    return payload_bits, total_bits - payload_bits


def header_breakdown(frame: Any, include_simulation_fields: bool = False) -> dict[str, int]:
    """Bits of each set header field (tag, length and value bytes), by field name.

    ``"payload"`` is the payload field's tag and length bytes only. The values add up
    to ``frame_bits(frame)[1]``.
    """
    header = header_message(frame, include_simulation_fields)
    out: dict[str, int] = {}
    if len(frame.payload):
        only_payload = type(frame)(payload=frame.payload)
        out["payload"] = 8 * (len(only_payload.SerializeToString()) - len(frame.payload))
    for desc, _ in header.ListFields():
        single = type(header)()
        # copy one field alone and measure it
        if desc.message_type is not None and not _is_repeated(desc):
            getattr(single, desc.name).CopyFrom(getattr(header, desc.name))
        elif _is_repeated(desc):
            getattr(single, desc.name).extend(getattr(header, desc.name))
        else:
            setattr(single, desc.name, getattr(header, desc.name))
        out[desc.name] = 8 * len(single.SerializeToString())
    return out


def _is_repeated(desc: Any) -> bool:
    # protobuf >= 5 has FieldDescriptor.is_repeated; older versions use label == 3
    is_rep = getattr(desc, "is_repeated", None)
    return bool(is_rep) if is_rep is not None else desc.label == 3
