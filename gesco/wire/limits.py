"""Limits on what a frame may declare and carry, checked before anything is decoded.

A ``SemanticFrame`` header declares the shape of the maps (``N = K + has_edges`` maps
of ``height x width``); the channel decodes the payload to ``(N, h, w)`` symbols and the
receiver upsamples the received symbols to ``(N, H, W)``. A 140-byte frame can declare
36 maps of 4096 x 4096 (604 M symbols, 2.4 GB as float32), so both hops call
:func:`check_frame_limits` (channel) / :func:`check_received_limits` (receiver) on the
header first and refuse, with a named :class:`~gesco.errors.GescoInputError`, any frame
that:

* carries unknown fields, or a field over its bound (:mod:`gesco.wire.bounds`: one
  descriptor-driven check of every string, bytes, repeated and map field, run first);
* declares another resolution than the receiver's model (when the hop knows it);
* declares more than ``max_elements`` full-resolution map elements ``N * H * W``;
* carries a payload larger than ``N * H * W`` bytes + 4 KiB (8 bits per map element:
  no lossless codec here needs more than a fraction of a bit per element, raw bit
  planes need 1/8 byte);
* (receiver) carries a payload in its header at all (the channel clears it), or a
  report that does not describe these symbols (:func:`check_report`).

After decoding, :func:`check_layout_symbols` (channel) checks that the decoded maps are
what the header says they are, so that the bit budget counts what was sent: the ``K``
class maps partition the image (one class per pixel), every listed class is present
(lossless codecs; a block-downsampled class narrower than the block may vanish), and
with ``has_edges`` the last map is an extra map, not one more class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gesco.errors import ChannelParameterError, ClassIdError, GescoInputError, PayloadError, ShapeError
from gesco.transmit_fields import from_wire
from gesco.wire import gesco_pb2 as pb
from gesco.wire.bounds import PAYLOAD_SLACK_BYTES, FieldBound, check_message_bounds, message_bounds
from gesco.wire.frames import codec_for_frame, n_maps, validate_frame, validate_received_frame

#: default budget of full-resolution map elements ``N * H * W`` per frame: 36 maps (the
#: 35 Cityscapes classes + edges) at the paper's 256 x 512
DEFAULT_MAX_FRAME_ELEMENTS = 36 * 256 * 512


class FrameTooLargeError(GescoInputError):
    """A frame declares more map elements than the hop's budget (gRPC INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class FrameLimits:
    """What one hop accepts.

    Attributes:
        max_elements: most full-resolution map elements ``N * H * W``.
        resolution: ``(H, W)`` frames must declare, or ``None`` when the hop does not know it.
    """

    max_elements: int = DEFAULT_MAX_FRAME_ELEMENTS
    resolution: tuple[int, int] | None = None

    @property
    def bounds(self) -> dict[str, FieldBound]:
        """The field bounds of this hop (:func:`gesco.wire.bounds.message_bounds`)."""
        return message_bounds(self.max_elements)


def _check_declared(header: pb.SemanticFrame, limits: FrameLimits) -> int:
    """Resolution and element budget of a (validated) header; returns ``N * H * W``."""
    if limits.resolution is not None and (header.height, header.width) != tuple(limits.resolution):
        h, w = limits.resolution
        raise ShapeError(
            f"frame is {header.height}x{header.width}, the receiver's model generates {h}x{w}; "
            "the sender must resize to the model resolution"
        )
    elements = n_maps(header) * header.height * header.width
    if elements > limits.max_elements:
        raise FrameTooLargeError(
            f"frame declares {n_maps(header)} maps of {header.height}x{header.width} = {elements} map elements, "
            f"the limit is {limits.max_elements}"
        )
    return elements


def check_frame_limits(frame: pb.SemanticFrame, limits: FrameLimits) -> None:
    """The channel's check of a ``SemanticFrame`` before decoding its payload.

    Raises:
        the errors of :func:`gesco.wire.bounds.check_message_bounds` (unknown fields, a
        field over its bound); the errors of :func:`gesco.wire.validate_frame`; ShapeError (another resolution),
        FrameTooLargeError (over the element budget), PayloadError (payload too large).
    """
    check_message_bounds(frame, limits.bounds)
    validate_frame(frame)
    elements = _check_declared(frame, limits)
    if len(frame.payload) > elements + PAYLOAD_SLACK_BYTES:
        raise PayloadError(
            f"payload is {len(frame.payload)} bytes for {elements} map elements; at most "
            f"{elements + PAYLOAD_SLACK_BYTES} are accepted"
        )


def check_received_limits(received: pb.ReceivedFrame, limits: FrameLimits) -> None:
    """The receiver's check of a ``ReceivedFrame`` before upsampling its symbols.

    Raises:
        the errors of :func:`gesco.wire.bounds.check_message_bounds`;
        the errors of :func:`gesco.wire.validate_received_frame`; ShapeError,
        FrameTooLargeError as :func:`check_frame_limits`; PayloadError when the header
        still carries a payload; the errors of :func:`check_report`.
    """
    check_message_bounds(received, limits.bounds)
    validate_received_frame(received)  # header + symbol shape and byte count (cheap)
    header = received.header
    _check_declared(header, limits)
    if len(header.payload):
        raise PayloadError(f"a received frame's header carries no payload (the channel clears it), got {len(header.payload)} bytes")
    check_report(received)


def check_report(received: pb.ReceivedFrame) -> None:
    """The channel report must describe these symbols: finite numbers in range.

    Checks: ``report.psnr_db`` equals the frame's requested PSNR (whose range the ingest checks
    once, :func:`gesco.link.check_transmit_params`); noise variance and power scale finite and
    ``>= 0``; the measured SNR not NaN; ``channel_uses`` is the number of symbols (the maps' plus
    the appearance side channel's, ``appearance_channel_uses``);
    ``payload_bits`` / ``header_bits`` non-negative.

    Raises:
        ChannelParameterError: a report that cannot come from the channel.
    """
    r = received.report
    if not received.HasField("report"):
        raise ChannelParameterError("received frame has no channel report")
    requested = from_wire(received.header.transmit)["psnr_db"]  # unset: the declared default
    if r.psnr_db != requested:
        raise ChannelParameterError(f"report.psnr_db {r.psnr_db} differs from the requested {requested} dB")
    for name in ("noise_variance", "power_scale"):
        value = getattr(r, name)
        if not (math.isfinite(value) and value >= 0):
            raise ChannelParameterError(f"report.{name} must be finite and >= 0, got {value}")
    if math.isnan(r.measured_snr_db):
        raise ChannelParameterError("report.measured_snr_db is NaN")
    side = len(received.appearance_symbols) // 2  # float16 symbols of the appearance side channel
    if r.appearance_channel_uses != side:
        raise ChannelParameterError(f"report.appearance_channel_uses is {r.appearance_channel_uses}, the frame holds "
                                    f"{side} appearance symbols")
    symbols = math.prod(int(s) for s in received.symbols_shape) + side
    if r.channel_uses != symbols:
        raise ChannelParameterError(f"report.channel_uses is {r.channel_uses}, the frame holds {symbols} symbols")


def check_layout_symbols(frame: pb.SemanticFrame, symbols: np.ndarray) -> None:
    """After decoding: the maps are the ``K`` class maps (+ an edge map) the header lists.

    Args:
        frame: the frame (validated).
        symbols: ``(N, h, w)`` uint8 maps the channel sends (``frame_channel_symbols``).
    Raises:
        ClassIdError: the class maps do not partition the image, or (lossless codecs) a
            listed class has no pixel, or ``has_edges`` with a last map that is one more class.
    """
    k = len(frame.class_ids)
    classes = symbols[:k]
    coverage = classes.sum(axis=0, dtype=np.int32)
    if not np.all(coverage == 1):
        uncovered = int(np.count_nonzero(coverage == 0))
        hint = " (with has_edges the last map must be an extra edge map, not one more class)" if frame.has_edges else ""
        raise ClassIdError(
            f"the {k} class maps do not give exactly one class per pixel: {uncovered} pixels have none, "
            f"{int(np.count_nonzero(coverage > 1))} have several{hint}"
        )
    if codec_for_frame(frame).lossless:
        empty = [int(c) for c, m in zip(frame.class_ids, classes) if not m.any()]
        if empty:
            raise ClassIdError(f"class ids {empty} are listed as present but no pixel has them")


__all__ = [
    "DEFAULT_MAX_FRAME_ELEMENTS",
    "PAYLOAD_SLACK_BYTES",
    "FrameLimits",
    "FrameTooLargeError",
    "check_frame_limits",
    "check_layout_symbols",
    "check_received_limits",
    "check_report",
]
