"""One rule for message sizes: every variable-size field of every wire message has a bound.

A protobuf message can carry any amount of data in its ``string``, ``bytes``,
``repeated`` and ``map`` fields, and fields the schema does not know (unknown fields)
travel along too. The services check each incoming message with
:func:`check_message_bounds` *before* anything else (before it is logged, counted,
decoded or stored): one generic walk driven by the proto descriptors, against the table
of bounds :func:`message_bounds`. A field without a bound is an error, both here (at run
time: :class:`UnboundedFieldError`) and in the test suite (``tests/wire/test_bounds.py``
walks every field of every message of ``gesco.proto``), so a new field cannot be added
without deciding how large it may be.

Bounds are keyed by the field's full name without the package (``"SemanticFrame.id"``;
map entries: ``"TransmitParams.ChannelParamsEntry.key"``):

* ``max_bytes``: a ``string`` (UTF-8 bytes) or ``bytes`` field; for a repeated field,
  each element;
* ``max_items``: a ``repeated`` or ``map`` field, the number of entries.

The two large fields are sized by the hop's :class:`~gesco.wire.limits.FrameLimits`
element budget ``E = max_elements`` (``N * H * W`` map elements): ``SemanticFrame.payload``
at most ``E + 4096`` bytes (8 bits per element, as :func:`~gesco.wire.limits.check_frame_limits`),
``ReceivedFrame.symbols`` at most ``2 E`` bytes (one float16 per element). Everything
else has a fixed bound.

:func:`largest_message_bytes` turns the bounds into the largest serialized size a valid
message can have, which sizes the gRPC message limits of the servers
(:func:`grpc_message_limit`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from gesco.defaults import APPEARANCE_BIT_DEPTH_RANGE, APPEARANCE_REPEAT_RANGE
from gesco.errors import GescoInputError
from gesco.wire import gesco_pb2 as pb

#: slack of the payload bound, in bytes (also :func:`gesco.wire.limits.check_frame_limits`'s)
PAYLOAD_SLACK_BYTES = 4096
#: longest human-readable text a message carries (acks' ``message``, upload notes): the
#: cap of error details and log lines (:data:`gesco_net.capped.MAX_ECHO_CHARS`)
MAX_TEXT_BYTES = 1000
#: longest name (codec, class space, channel preset, sampler, ...)
MAX_NAME_BYTES = 64
#: most classes a frame lists (``SemanticFrame.class_ids``)
MAX_CLASS_IDS = 1024
#: most information bits of the appearance side channel: 8 bits x 3 components per listed class
#: (gesco.appearance.BIT_DEPTH_RANGE), and most channel uses per bit (gesco.appearance.REPEAT_RANGE)
MAX_APPEARANCE_BITS = APPEARANCE_BIT_DEPTH_RANGE[1] * 3 * MAX_CLASS_IDS
MAX_APPEARANCE_REPEAT = APPEARANCE_REPEAT_RANGE[1]


class FieldTooLargeError(GescoInputError):
    """A field holds more bytes or entries than its bound (gRPC INVALID_ARGUMENT)."""


class UnknownFieldError(GescoInputError):
    """A message carries fields its schema does not define (gRPC INVALID_ARGUMENT)."""


class UnboundedFieldError(RuntimeError):
    """A variable-size field has no entry in the bounds table (a programming error)."""


@dataclass(frozen=True)
class FieldBound:
    """The bound of one field.

    Attributes:
        max_items: most entries of a ``repeated`` / ``map`` field (``None`` for a singular field).
        max_bytes: most bytes of a ``string`` / ``bytes`` value (each element when repeated;
            ``None`` for numbers and messages).
    """

    max_items: int | None = None
    max_bytes: int | None = None


def _text(n: int) -> FieldBound:
    return FieldBound(max_bytes=n)


#: bounds of every variable-size field except the two sized by the element budget
STATIC_BOUNDS: dict[str, FieldBound] = {
    # CodecParams
    "CodecParams.inner": _text(MAX_NAME_BYTES),
    "CodecParams.upsample": _text(MAX_NAME_BYTES),
    # TransmitParams
    "TransmitParams.channel": _text(MAX_NAME_BYTES),
    "TransmitParams.sampler": _text(MAX_NAME_BYTES),
    "TransmitParams.channel_params": FieldBound(max_items=32),
    "TransmitParams.ChannelParamsEntry.key": _text(MAX_NAME_BYTES),
    "TransmitParams.ChannelParamsEntry.value": _text(256),
    # UploadInfo (simulation only)
    "UploadInfo.aspect": _text(MAX_NAME_BYTES),
    "UploadInfo.source_box": FieldBound(max_items=4),  # [top, left, bottom, right)
    "UploadInfo.content_box": FieldBound(max_items=4),
    "UploadInfo.notes": FieldBound(max_items=16, max_bytes=MAX_TEXT_BYTES),
    "UploadInfo.edges": _text(MAX_NAME_BYTES),  # "uploaded" / "derived" / "none"
    # SemanticFrame
    "SemanticFrame.id": _text(128),  # gesco.wire.frames.MAX_ID_BYTES
    "SemanticFrame.class_space": _text(MAX_NAME_BYTES),
    "SemanticFrame.class_ids": FieldBound(max_items=MAX_CLASS_IDS),  # more than any class space here (COCO-Stuff: 182)
    "SemanticFrame.codec": _text(MAX_NAME_BYTES),
    # the appearance side channel (gesco.appearance): at most 8 bits x 3 components per present class
    "AppearanceParams.mode": _text(MAX_NAME_BYTES),
    "SemanticFrame.appearance_bits": _text(MAX_APPEARANCE_BITS // 8),
    # ChannelReport
    "ChannelReport.channel": _text(MAX_NAME_BYTES),
    # ReceivedFrame
    "ReceivedFrame.symbols_shape": FieldBound(max_items=3),  # (N, h, w)
    "ReceivedFrame.appearance_symbols": _text(2 * MAX_APPEARANCE_REPEAT * MAX_APPEARANCE_BITS),  # float16
    # acks
    "TransmitAck.id": _text(128),
    "TransmitAck.message": _text(MAX_TEXT_BYTES),
    "DeliverAck.id": _text(128),
    "DeliverAck.message": _text(MAX_TEXT_BYTES),
}

#: fields whose bound follows the hop's element budget (see the module docstring)
SIZED_BY_ELEMENTS: tuple[str, ...] = ("SemanticFrame.payload", "ReceivedFrame.symbols")


def message_bounds(max_elements: int) -> dict[str, FieldBound]:
    """The bounds table of a hop whose frames declare at most ``max_elements`` map elements."""
    bounds = dict(STATIC_BOUNDS)
    bounds["SemanticFrame.payload"] = FieldBound(max_bytes=max_elements + PAYLOAD_SLACK_BYTES)
    bounds["ReceivedFrame.symbols"] = FieldBound(max_bytes=2 * max_elements)  # float16
    return bounds


def field_key(field: FieldDescriptor) -> str:
    """``"Message.field"``: the field's full name without the package."""
    package = field.containing_type.file.package
    return field.full_name[len(package) + 1:] if package else field.full_name


def is_repeated(field: FieldDescriptor) -> bool:
    """Whether ``field`` is ``repeated`` (maps included)."""
    return bool(field.is_repeated)


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def needs_bound(field: FieldDescriptor) -> bool:
    """Whether a field can hold a variable amount of data (string, bytes, repeated, map)."""
    return is_repeated(field) or field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)


def unbounded_fields(descriptor: Descriptor, bounds: Mapping[str, FieldBound]) -> list[str]:
    """Variable-size fields of ``descriptor`` and of every message it contains that ``bounds`` lacks."""
    missing: list[str] = []
    seen: set[str] = set()

    def walk(desc: Descriptor) -> None:
        if desc.full_name in seen:
            return
        seen.add(desc.full_name)
        for field in desc.fields:
            key = field_key(field)
            if needs_bound(field) and (key not in bounds or not _bound_complete(field, bounds[key])):
                missing.append(key)
            if field.message_type is not None:
                walk(field.message_type)

    walk(descriptor)
    return missing


def _bound_complete(field: FieldDescriptor, bound: FieldBound) -> bool:
    """A bound that limits everything the field can hold."""
    text = field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)
    if is_repeated(field) and (bound.max_items is None or bound.max_items < 0):
        return False
    return not text or (bound.max_bytes is not None and bound.max_bytes >= 0)


def _size(value: str | bytes, max_bytes: int) -> int:
    """UTF-8 size of ``value``, without encoding a string that is too long anyway."""
    if isinstance(value, bytes):
        return len(value)
    if len(value) > max_bytes:  # at least one byte per character
        return len(value)
    return len(value.encode("utf-8", "surrogatepass"))


def check_message_bounds(message: Message, bounds: Mapping[str, FieldBound], path: str = "") -> None:
    """Refuse a message with unknown fields or a field over its bound (recursively).

    Only set fields are visited, so a valid message costs a few microseconds. Reports
    name the field and the sizes, never the value.

    Args:
        message: any message of ``gesco.proto``.
        bounds: :func:`message_bounds` of the hop.
        path: prefix of the field names in error messages (for nested messages).
    Raises:
        UnknownFieldError: the message (or a nested one) carries fields its schema lacks.
        FieldTooLargeError: a string / bytes value or a repeated / map field is over its bound.
        UnboundedFieldError: a set field has no bound in ``bounds``.
    """
    _refuse_unknown_fields(message, path)
    for field, value in message.ListFields():
        name = f"{path}.{field.name}" if path else f"{message.DESCRIPTOR.name}.{field.name}"
        if not needs_bound(field):
            if field.message_type is not None:
                check_message_bounds(value, bounds, name)
            continue
        key = field_key(field)
        bound = bounds.get(key)
        if bound is None:
            raise UnboundedFieldError(f"field {key} has no size bound (gesco.wire.bounds)")
        if is_repeated(field):
            _check_repeated(field, value, bound, bounds, name)
        else:
            _check_scalar(field, value, bounds, name)


def _refuse_unknown_fields(message: Message, path: str) -> None:
    """Raise :class:`UnknownFieldError` if ``message`` itself carries fields its schema lacks."""
    unknown = UnknownFieldSet(message)
    if len(unknown):
        numbers = sorted({f.field_number for f in unknown})
        shown = ", ".join(str(n) for n in numbers[:10]) + (f" (+{len(numbers) - 10} more)" if len(numbers) > 10 else "")
        raise UnknownFieldError(
            f"{path or message.DESCRIPTOR.name} carries {len(unknown)} unknown field(s) (numbers {shown}); "
            "only the fields of gesco.proto are accepted"
        )


def _check_repeated(field: FieldDescriptor, value: Any, bound: FieldBound, bounds: Mapping[str, FieldBound],
                    name: str) -> None:
    """A repeated or map field: its entry count, then each entry (messages recursively)."""
    if len(value) > bound.max_items:
        raise FieldTooLargeError(f"{name} has {len(value)} entries, at most {bound.max_items} are accepted")
    if _is_map(field):
        entry = field.message_type
        for k, v in value.items():
            for sub, item in ((entry.fields_by_name["key"], k), (entry.fields_by_name["value"], v)):
                _check_scalar(sub, item, bounds, f"{name}[{sub.name}]")
            if entry.fields_by_name["value"].message_type is not None:
                check_message_bounds(v, bounds, f"{name}[value]")
    elif field.message_type is not None:
        for i, item in enumerate(value):
            check_message_bounds(item, bounds, f"{name}[{i}]")
    elif bound.max_bytes is not None:
        for i, item in enumerate(value):
            if _size(item, bound.max_bytes) > bound.max_bytes:
                raise FieldTooLargeError(
                    f"{name}[{i}] is {_size(item, bound.max_bytes)} bytes long, at most {bound.max_bytes} are accepted"
                )


def _check_scalar(field: FieldDescriptor, value: object, bounds: Mapping[str, FieldBound], name: str) -> None:
    """A single string / bytes value against its bound (numbers pass)."""
    if field.type not in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        return
    key = field_key(field)
    bound = bounds.get(key)
    if bound is None or bound.max_bytes is None:
        raise UnboundedFieldError(f"field {key} has no size bound (gesco.wire.bounds)")
    size = _size(value, bound.max_bytes)  # type: ignore[arg-type]
    if size > bound.max_bytes:
        raise FieldTooLargeError(f"{name} is {size} bytes long, at most {bound.max_bytes} are accepted")


#: most bytes of one serialized tag + length prefix (tag: field numbers < 2^11; length: < 2^35)
_TAG_LEN_BYTES = 2 + 5
#: most bytes of one serialized scalar number (a varint of 64 bits, with its tag)
_NUMBER_BYTES = 2 + 10


def largest_message_bytes(descriptor: Descriptor, bounds: Mapping[str, FieldBound]) -> int:
    """Upper bound of the serialized size of a message whose fields respect ``bounds``.

    Each field counts its tag, its length prefix and its largest value (numbers: 10-byte
    varints; repeated fields: ``max_items`` elements; nested messages: recursively).

    Raises:
        UnboundedFieldError: a variable-size field without a bound.
    """

    def size(desc: Descriptor, stack: tuple[str, ...]) -> int:
        if desc.full_name in stack:
            raise UnboundedFieldError(f"message {desc.full_name} is recursive: its size has no bound")
        total = 0
        for field in desc.fields:
            if field.message_type is not None:
                one = _TAG_LEN_BYTES + size(field.message_type, (*stack, desc.full_name))
            elif field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
                bound = bounds.get(field_key(field))
                if bound is None or bound.max_bytes is None:
                    raise UnboundedFieldError(f"field {field_key(field)} has no size bound (gesco.wire.bounds)")
                one = _TAG_LEN_BYTES + bound.max_bytes
            else:
                one = _NUMBER_BYTES
            if is_repeated(field):
                bound = bounds.get(field_key(field))
                if bound is None or bound.max_items is None:
                    raise UnboundedFieldError(f"field {field_key(field)} has no entry bound (gesco.wire.bounds)")
                one *= bound.max_items
            total += one
        return total

    return size(descriptor, ())


#: margin of the gRPC message limits over the largest valid message
GRPC_LIMIT_MARGIN = 1.25
#: the smallest gRPC message limit (acks, health checks)
MIN_GRPC_LIMIT_BYTES = 64 * 1024


def grpc_message_limit(descriptor: Descriptor, max_elements: int) -> int:
    """gRPC message limit for a server receiving ``descriptor`` messages: the largest valid
    message (:func:`largest_message_bytes` with :func:`message_bounds`) times
    :data:`GRPC_LIMIT_MARGIN`, at least :data:`MIN_GRPC_LIMIT_BYTES`."""
    largest = largest_message_bytes(descriptor, message_bounds(max_elements))
    return max(MIN_GRPC_LIMIT_BYTES, int(largest * GRPC_LIMIT_MARGIN))


#: the messages the services accept: requests (channel, receiver) and replies (sender, channel)
ACCEPTED_MESSAGES: tuple[Descriptor, ...] = (
    pb.SemanticFrame.DESCRIPTOR, pb.ReceivedFrame.DESCRIPTOR, pb.TransmitAck.DESCRIPTOR, pb.DeliverAck.DESCRIPTOR,
)

__all__ = [
    "ACCEPTED_MESSAGES",
    "FieldBound",
    "FieldTooLargeError",
    "STATIC_BOUNDS",
    "SIZED_BY_ELEMENTS",
    "UnboundedFieldError",
    "UnknownFieldError",
    "check_message_bounds",
    "grpc_message_limit",
    "largest_message_bytes",
    "message_bounds",
    "unbounded_fields",
]
