"""Property: a frame with any variable-size field over its bound is refused, cheaply, with a short reply.

Issue 25's item 1 (60 MB of ``upload.notes`` stored and served back) would have failed
this test: the targets come from the proto descriptors (:mod:`gesco_net.frame_fuzz`),
so every ``string`` / ``bytes`` / ``repeated`` / ``map`` field, nested ones included, is
tried at the channel (``SemanticFrame``) and at the receiver (``ReceivedFrame``). Checked
per example: the status is ``INVALID_ARGUMENT`` naming the bound (or ``RESOURCE_EXHAUSTED``
from gRPC's message limit for a value past it), the details are capped, nothing is stored
or logged in the budget; over the run: the process's memory stays bounded. The long run
is ``bench/hardening_figures.py``.
"""

from __future__ import annotations

import grpc
import pytest
from frame_helpers import make_frame, received_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gesco.wire import DeliverAck, ReceivedFrame, SemanticFrame, TransmitAck
from gesco_net.capped import MAX_DETAIL_CHARS
from gesco_net.frame_fuzz import Target, apply_oversize, oversize_targets

CHANNEL_TARGETS = oversize_targets(SemanticFrame.DESCRIPTOR)
RECEIVER_TARGETS = oversize_targets(ReceivedFrame.DESCRIPTOR)
FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def _call(address: str, method: str, message, reply):
    with grpc.insecure_channel(address) as ch:
        return ch.unary_unary(method, request_serializer=type(message).SerializeToString,
                              response_deserializer=reply.FromString)(message, timeout=60)


def _check_refused(err: grpc.RpcError, targets: list[Target]) -> None:
    details = err.details() or ""
    assert len(details) <= MAX_DETAIL_CHARS + 40, f"{len(details)}-character status detail"
    if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:  # gRPC's message limit, before any handler
        assert "larger than max" in details, details
        return
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), details)
    assert "at most" in details and any(t.path[-1] in details for t in targets), details


def _send_channel(stack, frame: SemanticFrame, targets: list[Target]) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _call(stack.channel_address, "/gesco.v1.Channel/Transmit", frame, TransmitAck)
    _check_refused(err.value, targets)


def _send_receiver(stack, rx: ReceivedFrame, targets: list[Target]) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _call(f"127.0.0.1:{stack.receiver.grpc_port}", "/gesco.v1.Receiver/Deliver", rx, DeliverAck)
    _check_refused(err.value, targets)
    assert stack.receiver.store.get(rx.header.id) is None


def _oversized(base, draw_targets, bounds, excesses):
    message = base
    for target, excess in zip(draw_targets, excesses):
        message = apply_oversize(message, target, bounds, excess)
    return message


def test_every_field_one_over_its_bound_is_refused_at_both_hops(stack):
    """Deterministic sweep: each target once, one entry / byte over (the fuzz below draws the rest)."""
    frame, rx = make_frame("sweep"), received_frame("rx-sweep")
    for target in CHANNEL_TARGETS:
        _send_channel(stack, apply_oversize(frame, target, stack.channel.service.limits.bounds), [target])
    for target in RECEIVER_TARGETS:
        _send_receiver(stack, apply_oversize(rx, target, stack.receiver.ingest.limits.bounds), [target])
    assert "sweep" not in "".join(stack.budget_lines())


EXCESS = st.one_of(st.integers(1, 64), st.integers(65, 1 << 16), st.sampled_from([1 << 20, 8 << 20]))


@FUZZ
@given(targets=st.lists(st.sampled_from(CHANNEL_TARGETS), min_size=1, max_size=3, unique=True),
       excesses=st.lists(EXCESS, min_size=3, max_size=3))
def test_fuzz_channel_refuses_oversized_frames(stack, channel_base, targets, excesses):
    frame = _oversized(channel_base, targets, stack.channel.service.limits.bounds, excesses)
    _send_channel(stack, frame, targets)


@FUZZ
@given(targets=st.lists(st.sampled_from(RECEIVER_TARGETS), min_size=1, max_size=3, unique=True),
       excesses=st.lists(EXCESS, min_size=3, max_size=3))
def test_fuzz_receiver_refuses_oversized_frames(stack, receiver_base, targets, excesses):
    rx = _oversized(receiver_base, targets, stack.receiver.ingest.limits.bounds, excesses)
    _send_receiver(stack, rx, targets)


@pytest.fixture(scope="module")
def channel_base():
    return make_frame("fuzz-frame")


@pytest.fixture(scope="module")
def receiver_base():
    return received_frame("rx-fuzz-frame")


def test_memory_stays_bounded_over_a_fuzz_run(stack, channel_base, receiver_base):
    """40 oversized frames of up to ~8 MB each, half to each hop: the process (client and
    servers) grows by less than 150 MiB (measured: tens of MiB, which ``malloc_trim`` returns)."""
    import random

    rng = random.Random(25)
    before = _rss_mib()
    for i in range(40):
        excess = rng.choice([1, 100, 1 << 16, 1 << 20, 8 << 20])
        if i % 2:
            target = rng.choice(CHANNEL_TARGETS)
            _send_channel(stack, apply_oversize(channel_base, target, stack.channel.service.limits.bounds, excess),
                          [target])
        else:
            target = rng.choice(RECEIVER_TARGETS)
            _send_receiver(stack, apply_oversize(receiver_base, target, stack.receiver.ingest.limits.bounds, excess),
                           [target])
    growth = _rss_mib() - before
    assert growth < 150, f"the process grew by {growth:.0f} MiB over 40 refused frames"
    assert "fuzz-frame" not in "".join(stack.budget_lines())
