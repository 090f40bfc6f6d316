"""What the digital link sends: the image compressed, or the semantic frame.

* :func:`encode_image` / :func:`decode_image_bytes`: JPEG (libjpeg, 4:2:0), WebP (libwebp,
  lossy) or PNG (lossless, compression 9) through OpenCV. BPG has no maintained Python
  package, so WebP stands in for a modern codec.
* :func:`fit_image` picks the highest JPEG / WebP quality whose file fits a budget of real
  channel uses at a given MCS (:func:`gesco.digital.link.channel_uses_for`); PNG has no
  quality knob and takes the channel uses it needs.
* :func:`frame_bytes` / :func:`frame_from_bytes`: the semantic frame (header + lossless
  maps) as the bytes the digital link carries: the lean link header
  (:mod:`gesco.codecs.link_header`) then the payload, exactly the bits
  :func:`gesco.codecs.frame_bits` counts. The receiving end rebuilds the frame with what it
  knows without the link: the session's class space and the frame id of the frame number.
* :func:`exact_received_frame`: what the receiver has when those bytes arrive intact: the
  maps exactly (no channel noise), in the ``ReceivedFrame`` the generator takes.
* :data:`LOST_GREY`: what the receiver shows for a lost frame (see ``docs/digital.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gesco.codecs.accounting import link_frame_bytes
from gesco.codecs.link_header import parse_link_frame
from gesco.digital.link import channel_uses_for
from gesco.digital.mcs import MCS
from gesco.errors import DTypeError, GescoInputError, ImageDecodeError, ShapeError
from gesco.semantics.classes import get_class_space
from gesco.wire import gesco_pb2 as pb
from gesco.wire.frames import codec_params_message, frame_channel_symbols, symbols_to_bytes, validate_frame

#: image formats of the digital rows
IMAGE_FORMATS: tuple[str, ...] = ("jpeg", "webp", "png")
#: the receiver's picture of a lost frame: mid-grey (it shows nothing of the scene)
LOST_GREY = 128

_EXT = {"jpeg": ".jpg", "webp": ".webp", "png": ".png"}


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ShapeError(f"image must be (H, W, 3), got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise DTypeError(f"image must be uint8, got {rgb.dtype}")
    return rgb


def encode_image(rgb: np.ndarray, fmt: str, quality: int | None = None) -> bytes:
    """``(H, W, 3)`` uint8 RGB -> file bytes (``quality`` 1-100 for JPEG / WebP; ignored for PNG)."""
    rgb = _check_rgb(rgb)
    if fmt not in _EXT:
        raise GescoInputError(f"unknown image format {fmt!r}; known: {list(IMAGE_FORMATS)}")
    params: list[int] = []
    if fmt == "png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 9]
    else:
        q = 75 if quality is None else int(quality)
        if not 1 <= q <= 100:
            raise GescoInputError(f"{fmt} quality must be in [1, 100], got {quality}")
        params = [cv2.IMWRITE_JPEG_QUALITY if fmt == "jpeg" else cv2.IMWRITE_WEBP_QUALITY, q]
    ok, buf = cv2.imencode(_EXT[fmt], np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:  # pragma: no cover - OpenCV does not fail on valid uint8 images
        raise GescoInputError(f"OpenCV could not encode a {fmt} image")
    return buf.tobytes()


def decode_image_bytes(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """File bytes -> ``(H, W, 3)`` uint8 RGB; ``ImageDecodeError`` when they do not decode to ``shape``."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None or bgr.shape[:2] != tuple(shape):
        raise ImageDecodeError(f"the received bytes do not decode to a {shape[0]}x{shape[1]} image")
    return np.ascontiguousarray(bgr[:, :, ::-1])


@dataclass(frozen=True)
class FittedImage:
    """An image file chosen for a channel-use budget.

    Attributes:
        data: the file bytes (empty when nothing fits).
        fmt: ``"jpeg"``, ``"webp"`` or ``"png"``.
        quality: the quality used (``None`` for PNG, 0 when even quality 1 does not fit).
        channel_uses: real channel uses of ``data`` at the MCS.
    """

    data: bytes
    fmt: str
    quality: int | None
    channel_uses: int

    @property
    def fits(self) -> bool:
        return len(self.data) > 0


def fit_image(rgb: np.ndarray, fmt: str, mcs: MCS, budget_uses: int | None) -> FittedImage:
    """The highest-quality ``fmt`` file of ``rgb`` that needs at most ``budget_uses`` channel uses at ``mcs``.

    ``budget_uses=None`` (or PNG): no budget, quality 95 for the lossy formats. The file
    size is not monotone in the quality, so every quality 100..1 is tried (64 x 128: ~0.1 ms each).
    """
    if fmt == "png" or budget_uses is None:
        data = encode_image(rgb, fmt, None if fmt == "png" else 95)
        return FittedImage(data, fmt, None if fmt == "png" else 95, channel_uses_for(len(data), mcs))
    for q in range(100, 0, -1):
        data = encode_image(rgb, fmt, q)
        uses = channel_uses_for(len(data), mcs)
        if uses <= budget_uses:
            return FittedImage(data, fmt, q, uses)
    return FittedImage(b"", fmt, 0, 0)


def frame_bytes(frame: pb.SemanticFrame, frame_number: int = 0) -> bytes:
    """The frame as the digital link carries it: lean link header + payload (what ``frame_bits`` counts)."""
    return link_frame_bytes(frame, frame_number)


def frame_from_bytes(data: bytes, frame_id: str, class_space: str) -> pb.SemanticFrame:
    """Inverse of :func:`frame_bytes` at the receiving end.

    Args:
        data: the delivered bytes.
        frame_id: the id the receiver's frame-number mapping gives (not sent on the link).
        class_space: the session's class space (not sent on the link).
    Raises:
        PayloadError, ClassIdError, ...: bytes that are not a valid frame (``validate_frame``).
    """
    space = get_class_space(class_space)
    header, payload = parse_link_frame(data, space.num_classes)
    frame = pb.SemanticFrame(
        id=frame_id, height=header.height, width=header.width, num_classes=space.num_classes,
        class_space=space.name, class_ids=list(header.class_ids), has_edges=header.has_edges,
        codec=header.codec, payload=payload, power_scale=header.power_scale,
    )
    if header.codec_params:
        frame.codec_params.CopyFrom(codec_params_message(header.codec_params))
    validate_frame(frame)
    return frame


def exact_received_frame(frame: pb.SemanticFrame) -> pb.ReceivedFrame:
    """The receiver's input for a frame delivered without error: the maps themselves as symbols."""
    symbols = frame_channel_symbols(frame)  # (N, h, w) uint8 maps
    header = pb.SemanticFrame()
    header.CopyFrom(frame)
    header.ClearField("payload")
    header.power_scale = 1.0
    return pb.ReceivedFrame(header=header, symbols=symbols_to_bytes(symbols), symbols_shape=list(symbols.shape),
                            report=pb.ChannelReport(channel="digital", power_scale=1.0))


def lost_image(shape: tuple[int, int]) -> np.ndarray:
    """What the receiver shows for a lost frame: a mid-grey ``(H, W, 3)`` uint8 image."""
    return np.full((*shape, 3), LOST_GREY, dtype=np.uint8)
