"""The one rule for message sizes (gesco.wire.bounds): every variable-size field has a bound."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor

from gesco.wire import gesco_pb2 as pb
from gesco.wire.bounds import (
    ACCEPTED_MESSAGES,
    STATIC_BOUNDS,
    FieldBound,
    FieldTooLargeError,
    UnboundedFieldError,
    UnknownFieldError,
    check_message_bounds,
    field_key,
    grpc_message_limit,
    largest_message_bytes,
    message_bounds,
    needs_bound,
    unbounded_fields,
)
from gesco.wire.limits import DEFAULT_MAX_FRAME_ELEMENTS

BOUNDS = message_bounds(DEFAULT_MAX_FRAME_ELEMENTS)


def _all_messages():
    """Every message type of gesco.proto, nested types (map entries) included."""
    out = []

    def walk(desc):
        out.append(desc)
        for nested in desc.nested_types:
            walk(nested)

    for desc in pb.DESCRIPTOR.message_types_by_name.values():
        walk(desc)
    return out


def test_every_variable_size_field_of_every_message_has_a_bound():
    missing = [k for desc in _all_messages() for k in unbounded_fields(desc, BOUNDS)]
    assert missing == [], f"fields without a bound in gesco.wire.bounds.STATIC_BOUNDS: {missing}"


def test_the_bounds_table_names_only_existing_variable_size_fields():
    existing = {field_key(f) for desc in _all_messages() for f in desc.fields if needs_bound(f)}
    assert set(BOUNDS) <= existing, f"stale entries: {sorted(set(BOUNDS) - existing)}"
    assert set(BOUNDS) == existing


def test_accepted_messages_cover_every_rpc_request_and_reply():
    rpc_types = {m.input_type.full_name for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods}
    rpc_types |= {m.output_type.full_name for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert rpc_types == {d.full_name for d in ACCEPTED_MESSAGES}


def test_a_new_unbounded_field_is_detected():
    """The check the test above relies on: a field missing from the table is reported, and refused at run time."""
    table = {k: v for k, v in BOUNDS.items() if k != "UploadInfo.notes"}
    assert unbounded_fields(pb.SemanticFrame.DESCRIPTOR, table) == ["UploadInfo.notes"]
    frame = pb.SemanticFrame(id="a")
    frame.upload.notes.append("x")
    with pytest.raises(UnboundedFieldError, match="UploadInfo.notes"):
        check_message_bounds(frame, table)
    # a repeated string bounded in count only is incomplete
    table["UploadInfo.notes"] = FieldBound(max_items=4)
    assert unbounded_fields(pb.SemanticFrame.DESCRIPTOR, table) == ["UploadInfo.notes"]


def _oversized(field: FieldDescriptor, bound: FieldBound):
    """A value one over ``bound`` for ``field``."""
    if field.type == FieldDescriptor.TYPE_BYTES:
        return b"\x01" * (bound.max_bytes + 1)
    if field.type == FieldDescriptor.TYPE_STRING:
        return "e" * (bound.max_bytes + 1)
    return None


@pytest.mark.parametrize("key", sorted(k for k in BOUNDS if k.split(".")[0] in ("SemanticFrame", "CodecParams",
                                                                                "TransmitParams", "UploadInfo")))
def test_every_field_of_a_frame_one_over_its_bound_is_refused(key):
    frame = pb.SemanticFrame(id="frame-1")
    parts = key.split(".")
    holder = {"SemanticFrame": frame, "CodecParams": frame.codec_params, "TransmitParams": frame.transmit,
              "UploadInfo": frame.upload}[parts[0]]
    bound = BOUNDS[key]
    if parts[1] == "ChannelParamsEntry":  # map key / value
        field = pb.TransmitParams.DESCRIPTOR.nested_types_by_name["ChannelParamsEntry"].fields_by_name[parts[2]]
        big = _oversized(field, bound)
        if parts[2] == "key":
            holder.channel_params[big] = "1"
        else:
            holder.channel_params["k"] = big
    else:
        field = holder.DESCRIPTOR.fields_by_name[parts[1]]
        if field.is_repeated:
            container = getattr(holder, field.name)
            if field.message_type is not None:  # map<string, string>
                for i in range(bound.max_items + 1):
                    container[f"k{i}"] = "v"
            else:
                item = "n" if field.type == FieldDescriptor.TYPE_STRING else 1
                container.extend([item] * (bound.max_items + 1))
        else:
            setattr(holder, field.name, _oversized(field, bound))
    with pytest.raises(FieldTooLargeError, match="at most"):
        check_message_bounds(frame, BOUNDS)
    # over-long elements of a repeated string are refused too
    if key == "UploadInfo.notes":
        frame = pb.SemanticFrame(id="frame-1")
        frame.upload.notes.append("n" * (bound.max_bytes + 1))
        with pytest.raises(FieldTooLargeError, match=r"notes\[0\]"):
            check_message_bounds(frame, BOUNDS)


def test_values_at_their_bound_pass():
    frame = pb.SemanticFrame(id="f" * 128, class_ids=list(range(1024)), codec="c" * 64,
                             payload=b"\x00" * (DEFAULT_MAX_FRAME_ELEMENTS + 4096))
    frame.upload.notes.extend(["é" * 500] * 16)  # 1000 UTF-8 bytes each
    frame.transmit.channel_params.update({f"k{i:02d}": "v" * 256 for i in range(32)})
    check_message_bounds(frame, BOUNDS)
    frame.upload.notes[3] = "é" * 501  # 1002 bytes: UTF-8 bytes count, not characters
    with pytest.raises(FieldTooLargeError, match=r"upload.notes\[3\] is 1002 bytes"):
        check_message_bounds(frame, BOUNDS)


def test_received_frame_bounds_reach_the_nested_header():
    rx = pb.ReceivedFrame(symbols=b"\x00" * (2 * DEFAULT_MAX_FRAME_ELEMENTS), symbols_shape=[1, 2, 3])
    check_message_bounds(rx, BOUNDS)
    rx.header.upload.source_box.extend([0] * 5)
    with pytest.raises(FieldTooLargeError, match="ReceivedFrame.header.upload.source_box has 5 entries"):
        check_message_bounds(rx, BOUNDS)
    rx = pb.ReceivedFrame(symbols_shape=[1] * 4)
    with pytest.raises(FieldTooLargeError, match="symbols_shape"):
        check_message_bounds(rx, BOUNDS)
    rx = pb.ReceivedFrame(symbols=b"\x00" * (2 * DEFAULT_MAX_FRAME_ELEMENTS + 1))
    with pytest.raises(FieldTooLargeError, match="symbols"):
        check_message_bounds(rx, BOUNDS)


def test_unknown_fields_are_refused_at_any_depth():
    frame = pb.SemanticFrame(id="a")
    data = frame.SerializeToString() + b"\xfa\x3f\x04junk"  # field 1023, length-delimited
    with pytest.raises(UnknownFieldError, match="1023"):
        check_message_bounds(pb.SemanticFrame.FromString(data), BOUNDS)
    rx = pb.ReceivedFrame()
    rx.header.ParseFromString(data)
    with pytest.raises(UnknownFieldError, match=r"ReceivedFrame.header carries 1 unknown field"):
        check_message_bounds(rx, BOUNDS)


def test_errors_name_sizes_never_values():
    frame = pb.SemanticFrame(id="x" * 100_000)
    with pytest.raises(FieldTooLargeError) as err:
        check_message_bounds(frame, BOUNDS)
    assert len(str(err.value)) < 200 and "xxxx" not in str(err.value)


def test_largest_message_follows_the_element_budget():
    small = largest_message_bytes(pb.ReceivedFrame.DESCRIPTOR, message_bounds(1000))
    big = largest_message_bytes(pb.ReceivedFrame.DESCRIPTOR, message_bounds(1_000_000))
    # only the symbols (2 bytes / element) and the nested header's payload field (1 byte) grow
    assert big - small == 3 * (1_000_000 - 1000)
    # a frame built at every bound serializes within the computed size
    frame = pb.SemanticFrame(id="f" * 128, class_ids=list(range(1024)), payload=b"\x00" * (1000 + 4096),
                             class_space="s" * 64, codec="c" * 64, height=2**32 - 1)
    frame.upload.notes.extend(["n" * 1000] * 16)
    frame.transmit.channel_params.update({f"{i:064d}": "v" * 256 for i in range(32)})
    assert len(frame.SerializeToString()) <= largest_message_bytes(pb.SemanticFrame.DESCRIPTOR, message_bounds(1000))
    # the servers' limits: far below the old fixed 64 MiB at the default budget (36 maps of 256 x 512)
    assert grpc_message_limit(pb.SemanticFrame.DESCRIPTOR, DEFAULT_MAX_FRAME_ELEMENTS) < 7 * 2**20
    # (symbols 2 E + the header's payload field E, bounded per field although the receiver wants it empty)
    assert grpc_message_limit(pb.ReceivedFrame.DESCRIPTOR, DEFAULT_MAX_FRAME_ELEMENTS) < 18 * 2**20


def test_static_bounds_hold_the_ids_the_frames_accept():
    from gesco.wire.frames import MAX_ID_BYTES

    assert STATIC_BOUNDS["SemanticFrame.id"].max_bytes == MAX_ID_BYTES
