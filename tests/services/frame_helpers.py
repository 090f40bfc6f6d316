"""Frames and jobs the service tests share: a frame as the sender sends it and its
Transmit call (the channel's tests), a frame as the channel delivers it and its Deliver
call (the receiver's), a job put straight into the store (the worker's)."""

from __future__ import annotations

import grpc
from svc_helpers import TINY_RESOLUTION

from gesco.data.synthetic import generate_scene
from gesco.link import TransmitSettings, apply_channel, budget_record, encode_image_frame
from gesco.semantics.classes import get_class_space
from gesco.wire import DeliverAck, ReceivedFrame, SemanticFrame, TransmitAck
from gesco_net import gesco_pb2_grpc
from receiver.ingest import Ingest, batch_key
from receiver.stores import JobStore

SPACE = get_class_space("cityscapes")


def make_frame(frame_id: str, **transmit) -> SemanticFrame:
    s = generate_scene(11, 48, 96)
    settings = TransmitSettings(steps=2, **transmit)
    frame, _ = encode_image_frame(s.image, s.label, s.instance, space=SPACE, resolution=TINY_RESOLUTION,
                                  frame_id=frame_id, transmit=settings)
    return frame


def transmit(address: str, frame_or_bytes, timeout: float = 20.0) -> TransmitAck:
    with grpc.insecure_channel(address) as ch:
        if isinstance(frame_or_bytes, bytes):  # raw bytes, possibly not a valid message
            call = ch.unary_unary("/gesco.v1.Channel/Transmit", request_serializer=None,
                                  response_deserializer=TransmitAck.FromString)
            return call(frame_or_bytes, timeout=timeout)
        return gesco_pb2_grpc.ChannelStub(ch).Transmit(frame_or_bytes, timeout=timeout)


def received_frame(frame_id: str, resolution=TINY_RESOLUTION, seed: int = 0, **transmit) -> ReceivedFrame:
    s = generate_scene(21, 48, 96)
    transmit.setdefault("steps", 2)
    frame, _ = encode_image_frame(s.image, s.label, s.instance, space=SPACE, resolution=resolution,
                                  frame_id=frame_id, transmit=TransmitSettings(seed=seed, **transmit))
    return apply_channel(frame)


def deliver(stack, message, timeout: float = 10.0) -> DeliverAck:
    address = f"127.0.0.1:{stack.receiver.grpc_port}"
    with grpc.insecure_channel(address) as ch:
        if isinstance(message, bytes):
            call = ch.unary_unary("/gesco.v1.Receiver/Deliver", request_serializer=None,
                                  response_deserializer=DeliverAck.FromString)
            return call(message, timeout=timeout)
        return gesco_pb2_grpc.ReceiverStub(ch).Deliver(message, timeout=timeout)


def store_job(store: JobStore, ingest: Ingest, rx) -> None:
    settings = ingest.check(rx)
    store.add(rx.header.id, rx.SerializeToString(), settings.to_dict(), budget_record(rx.header, rx.report),
              batch_key(settings), model=ingest.model)
