"""Exact bit accounting of a frame: payload bits and header bits.

Bits are counted on bytes that exist, so the count is what actually crosses the link:

* ``payload_bits = 8 * len(frame.payload)``;
* ``header_bits = 8 * len(link_header_bytes(frame))``: the **lean link header**
  (:mod:`gesco.codecs.link_header`), the bit-packed fields a receiver does not already
  know: a 16-bit frame number, the shape, the present classes as a bit set or run-length
  code, the edge flag, the codec number and parameters, the channel's power scale and the
  payload length. So ``payload_bits + header_bits == 8 * len(link_frame_bytes(frame))``
  exactly, the bytes a real link would send.

Not counted: the frame / job id (each hop keeps the frame number -> id mapping; the
simulation carries the id in the protobuf beside the counted bits), the class space's name
and size (fixed per session), and the numbers only the simulation carries
(``SIMULATION_FIELDS``: the image's PNG / JPEG sizes for the comparison, the receiver's
sampling settings, how the upload was prepared). ``include_simulation_fields=True`` counts
instead the whole protobuf message the simulation passes between its services (every field,
with protobuf's tags and lengths, payload excluded): what gesco's own transport carries.

The functions take the message duck-typed (anything with protobuf's ``CopyFrom``,
``ClearField``, ``SerializeToString``), so this module does not import ``gesco.wire``.
"""

from __future__ import annotations

from typing import Any

from gesco.codecs.link_header import header_from_frame, link_header_fields, pack_link_header

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


def session_classes(frame: Any) -> int:
    """The session's class count ``C`` (``num_classes``; at least one past the largest id)."""
    return max(int(frame.num_classes), max((int(c) for c in frame.class_ids), default=-1) + 1, 1)


def link_header_bytes(frame: Any, frame_number: int = 0) -> bytes:
    """The frame's lean link header (:mod:`gesco.codecs.link_header`).

    ``frame_number``: the sender's frame counter (16 bits on the link; its value does not
    change the size).
    """
    return pack_link_header(header_from_frame(frame, frame_number), session_classes(frame))


def link_frame_bytes(frame: Any, frame_number: int = 0) -> bytes:
    """What a real link sends for the frame: the lean header, then the payload."""
    return link_header_bytes(frame, frame_number) + bytes(frame.payload)


def frame_bits(frame: Any, include_simulation_fields: bool = False) -> tuple[int, int]:
    """``(payload_bits, header_bits)`` of a ``SemanticFrame``, see the module docstring.

    ``payload_bits + header_bits == 8 * len(link_frame_bytes(frame))``; with
    ``include_simulation_fields`` the header is the rest of the serialized protobuf message.
    """
    payload_bits = 8 * len(frame.payload)
    if include_simulation_fields:
        total_bits = 8 * len(_counted_message(frame, True).SerializeToString())
        return payload_bits, total_bits - payload_bits
    return payload_bits, 8 * len(link_header_bytes(frame))


def header_breakdown(frame: Any, include_simulation_fields: bool = False) -> dict[str, int]:
    """Bits of each part of the header, adding up to ``frame_bits(frame, ...)[1]``.

    Lean header: ``frame_number``, ``shape``, ``classes``, ``has_edges``, ``codec``,
    ``codec_params``, ``power_scale``, ``payload_length``, ``padding``. With
    ``include_simulation_fields``: each set protobuf field (tag, length and value bytes),
    ``"payload"`` being the payload field's tag and length bytes only.
    """
    if not include_simulation_fields:
        return link_header_fields(header_from_frame(frame), session_classes(frame))
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
