"""Hardening, second pass (issue 25): the field bounds, capped echoes and the call cap, on the real servers.

Each test is an attack of the issue: simulation-only fields carrying megabytes (``upload.notes``,
``source_box``, ``content_box``), a 10 M-entry ``symbols_shape``, 300 000 ``channel_params``,
a 10 KB sampler name, a 60 MB unknown field counted in the bit budget.
"""

from __future__ import annotations

import logging

import grpc
import pytest
from frame_helpers import deliver, make_frame, received_frame, transmit

from gesco.wire import ACK_ACCEPTED


def _fat_upload(frame, field: str) -> None:
    """Over the field's bound, under the receiver's gRPC limit (which refuses the issue's 60 MB outright)."""
    if field == "notes":
        frame.upload.notes.extend(["n" * 1000] * 100)  # 100 KB of notes
    else:
        getattr(frame.upload, field).extend([7] * 100_000)


@pytest.mark.parametrize("field", ["notes", "source_box", "content_box"])
def test_oversized_upload_info_is_refused_by_the_channel_and_the_receiver(stack, field):
    frame = make_frame(f"fat-{field.replace('_', '-')}")
    _fat_upload(frame, field)
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, frame)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert f"SemanticFrame.upload.{field} has" in err.value.details() and "at most" in err.value.details()
    assert frame.id not in "".join(stack.budget_lines())

    rx = received_frame(f"rx-fat-{field.replace('_', '-')}")
    _fat_upload(rx.header, field)
    with pytest.raises(grpc.RpcError) as err:
        deliver(stack, rx, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert f"ReceivedFrame.header.upload.{field} has" in err.value.details()
    assert stack.receiver.store.get(rx.header.id) is None


def test_long_symbols_shape_is_refused_with_a_short_detail_and_log_line(stack, caplog):
    rx = received_frame("rx-long-shape")
    rx.symbols_shape.extend([1] * 100_000)
    with caplog.at_level(logging.INFO), pytest.raises(grpc.RpcError) as err:
        deliver(stack, rx, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "symbols_shape has 100003 entries, at most 3" in err.value.details()
    assert len(err.value.details()) < 300
    assert max(len(r.getMessage()) for r in caplog.records) < 2000


def test_many_channel_params_and_a_long_sampler_name_get_invalid_argument(stack):
    frame = make_frame("many-params")
    frame.transmit.channel_params.update({f"k{i}": "1" for i in range(300_000)})
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, frame)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "channel_params has 300000 entries, at most 32" in err.value.details()
    for attempt in range(7):  # the issue: RESOURCE_EXHAUSTED in 3 of 7 tries
        frame = make_frame(f"long-sampler-{attempt}")
        frame.transmit.sampler = "s" * 10_000
        with pytest.raises(grpc.RpcError) as err:
            transmit(stack.channel_address, frame)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        assert "transmit.sampler is 10000 bytes long, at most 64" in err.value.details()


def test_unknown_field_is_refused_before_the_budget_is_counted(stack):
    frame = make_frame("unknown-field")
    data = frame.SerializeToString() + b"\xfa\x3f" + b"\x80\x80\x04" + b"\x00" * 65536  # field 1023, 64 KiB
    with pytest.raises(grpc.RpcError) as err:
        transmit(stack.channel_address, data)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown field" in err.value.details() and "1023" in err.value.details()
    assert "unknown-field" not in "".join(stack.budget_lines())
    assert transmit(stack.channel_address, frame).status == ACK_ACCEPTED  # the same frame without it passes
