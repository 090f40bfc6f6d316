"""Helpers around the wire messages: building and checking frames, packing symbols.

* :func:`make_frame` codes a :class:`~gesco.semantics.layout.SemanticLayout` into a
  ``SemanticFrame`` (sender side); :func:`codec_for_frame` / :func:`frame_maps` /
  :func:`frame_channel_symbols` read it back (channel side).
* :func:`validate_frame` and :func:`validate_received_frame` check a header before
  anything is decoded and raise a named error (:mod:`gesco.errors`) that says what is
  inconsistent.
* :func:`symbols_to_bytes` / :func:`symbols_from_bytes` pack received channel symbols as
  little-endian IEEE float16 (``ReceivedFrame.symbols``).
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from gesco.codecs import MapCodec, get_codec
from gesco.errors import ChannelParameterError, ClassIdError, PayloadError, ShapeError, UnknownCodecError
from gesco.semantics.classes import get_class_space
from gesco.semantics.layout import SemanticLayout, check_class_ids
from gesco.wire import gesco_pb2 as pb

#: largest height or width a frame may declare, in pixels
MAX_FRAME_SIDE = 4096
#: longest frame id, in bytes
MAX_ID_BYTES = 128
#: frame / job ids every hop accepts (they name a folder at the receiver): 1-128 letters,
#: digits, '.', '_', '-', starting alphanumeric; matched with ``fullmatch`` (a ``$``
#: would let a trailing newline through)
FRAME_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_FLOAT16_LE = np.dtype("<f2")


def codec_params_dict(params: pb.CodecParams) -> dict[str, int | str]:
    """The set fields of a ``CodecParams`` message as ``get_codec`` keyword arguments."""
    out: dict[str, int | str] = {}
    if params.factor:
        out["factor"] = int(params.factor)
    if params.inner:
        out["inner"] = params.inner
    if params.upsample:
        out["upsample"] = params.upsample
    return out


def codec_params_message(params: dict[str, int | str]) -> pb.CodecParams:
    """Inverse of :func:`codec_params_dict` (unknown keys raise :class:`UnknownCodecError`)."""
    msg = pb.CodecParams()
    for key, value in params.items():
        if key not in ("factor", "inner", "upsample"):
            raise UnknownCodecError(f"codec parameter {key!r} has no field in CodecParams")
        setattr(msg, key, value)
    return msg


def codec_for_frame(frame: pb.SemanticFrame) -> MapCodec:
    """The codec named in the frame header, built with its parameters."""
    if not frame.codec:
        raise UnknownCodecError("frame does not name a codec")
    return get_codec(frame.codec, **codec_params_dict(frame.codec_params))


def check_frame_id(frame_id: str) -> str:
    """Return ``frame_id`` or raise :class:`PayloadError` when it is not a valid frame / job id."""
    if not isinstance(frame_id, str) or FRAME_ID_PATTERN.fullmatch(frame_id) is None:
        shown = repr(frame_id[:40]) if isinstance(frame_id, str) else type(frame_id).__name__
        raise PayloadError(
            f"frame / job id {shown} is not accepted: use 1-128 letters, digits, '.', '_' or '-', starting alphanumeric"
        )
    return frame_id


def n_maps(frame: pb.SemanticFrame) -> int:
    """Number of coded maps ``N = K + has_edges``."""
    return len(frame.class_ids) + int(frame.has_edges)


def make_frame(
    layout: SemanticLayout,
    codec: MapCodec,
    frame_id: str,
    class_space: str = "",
) -> pb.SemanticFrame:
    """Code a layout into a ``SemanticFrame`` (header + payload; simulation fields unset).

    Args:
        layout: the present maps ``(K + e, H, W)`` and their class ids.
        codec: the map codec (``gesco.codecs.get_codec(...)``).
        frame_id: the frame / job id.
        class_space: name of the class space (checked against ``layout.num_classes``).
    """
    encoded = codec.encode(layout.maps)
    frame = pb.SemanticFrame(
        id=frame_id,
        height=layout.height,
        width=layout.width,
        num_classes=layout.num_classes,
        class_space=class_space,
        class_ids=[int(c) for c in layout.class_ids],
        has_edges=layout.has_edges,
        codec=encoded.codec,
        payload=encoded.payload,
    )
    if encoded.params:  # an empty CodecParams would still cost 2 header bytes
        frame.codec_params.CopyFrom(codec_params_message(encoded.params))
    validate_frame(frame)
    return frame


def frame_maps(frame: pb.SemanticFrame) -> np.ndarray:
    """Decode the payload to ``(N, H, W)`` uint8 maps (exact for lossless codecs)."""
    validate_frame(frame)
    return codec_for_frame(frame).decode(frame.payload, n_maps(frame), frame.height, frame.width)


def frame_channel_symbols(frame: pb.SemanticFrame) -> np.ndarray:
    """Decode the payload to the ``(N, h, w)`` uint8 maps the channel transmits."""
    validate_frame(frame)
    return codec_for_frame(frame).channel_symbols(frame.payload, n_maps(frame), frame.height, frame.width)


def validate_frame(frame: pb.SemanticFrame, require_payload: bool = True) -> None:
    """Check that a frame header is consistent; return None or raise a named error.

    Checks: id present, short and of :data:`FRAME_ID_PATTERN`; ``1 <= height, width <= 4096``; the class space is
    known and its size is ``num_classes`` (or, without a name, ``num_classes >= 1``);
    at least one class id, strictly increasing, inside ``[0, num_classes)``; a known
    codec with valid parameters; a non-empty payload (when ``require_payload``); a
    finite, non-negative power scale; finite PSNR and guidance scale.

    Raises:
        PayloadError: bad id or missing payload.
        ShapeError: height or width zero or above :data:`MAX_FRAME_SIDE`.
        ClassIdError: class space / num_classes / class ids inconsistent.
        UnknownCodecError: unknown codec or invalid codec parameters.
        ChannelParameterError: non-finite or negative power scale, non-finite PSNR.
    """
    if not frame.id:
        raise PayloadError("frame has no id")
    if len(frame.id.encode()) > MAX_ID_BYTES:
        raise PayloadError(f"frame id is {len(frame.id.encode())} bytes long, at most {MAX_ID_BYTES} allowed")
    check_frame_id(frame.id)
    for name in ("height", "width"):
        size = getattr(frame, name)
        if not 1 <= size <= MAX_FRAME_SIDE:
            raise ShapeError(f"frame {name} is {size}, must be in [1, {MAX_FRAME_SIDE}]")
    if frame.class_space:
        space = get_class_space(frame.class_space)  # ClassIdError for an unknown name
        if frame.num_classes != space.num_classes:
            raise ClassIdError(
                f"num_classes is {frame.num_classes} but class space {space.name!r} has {space.num_classes} classes"
            )
    elif frame.num_classes < 1:
        raise ClassIdError("num_classes must be >= 1")
    if len(frame.class_ids) == 0:
        raise ClassIdError("frame lists no class ids (an image has at least one class)")
    check_class_ids(np.asarray(frame.class_ids, dtype=np.int64), frame.num_classes)
    codec_for_frame(frame)  # UnknownCodecError for a bad name or parameters
    if require_payload and len(frame.payload) == 0:
        raise PayloadError("frame payload is empty")
    if not math.isfinite(frame.power_scale) or frame.power_scale < 0:
        raise ChannelParameterError(f"power scale must be finite and >= 0, got {frame.power_scale}")


def validate_received_frame(received: pb.ReceivedFrame) -> None:
    """Check a ``ReceivedFrame``: its header, and symbols of the codec's channel shape.

    Raises:
        the errors of :func:`validate_frame`; ShapeError when ``symbols_shape`` is not
        the codec's channel shape; PayloadError when ``symbols`` has the wrong size.
    """
    if not received.HasField("header"):
        raise PayloadError("received frame has no header")
    header = received.header
    validate_frame(header, require_payload=False)
    expected = codec_for_frame(header).channel_shape(n_maps(header), header.height, header.width)
    shape = tuple(int(s) for s in received.symbols_shape)
    if shape != tuple(expected):
        raise ShapeError(f"symbols shape {shape} does not match the codec's channel shape {tuple(expected)}")
    n_bytes = 2 * math.prod(shape)
    if len(received.symbols) != n_bytes:
        raise PayloadError(f"symbols hold {len(received.symbols)} bytes, shape {shape} needs {n_bytes} (float16)")


def symbols_to_bytes(symbols: torch.Tensor | np.ndarray) -> bytes:
    """Pack real symbols as little-endian IEEE float16, C order.

    Args:
        symbols: any shape, a real float (or integer) tensor / array.
    Returns:
        ``2 * symbols.size`` bytes.
    Raises:
        PayloadError: NaN, infinite, or beyond float16's range (|x| > 65504).
    """
    if isinstance(symbols, torch.Tensor):
        arr = symbols.detach().cpu().numpy()
    else:
        arr = np.asarray(symbols)
    if arr.dtype.kind not in "fiub":
        raise PayloadError(f"symbols must be real numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise PayloadError("symbols hold NaN or inf")
    with np.errstate(over="ignore"):
        half = arr.astype(_FLOAT16_LE)
    if not np.isfinite(half).all():
        raise PayloadError("symbols exceed the float16 range (|x| > 65504)")
    return np.ascontiguousarray(half).tobytes()


def symbols_from_bytes(data: bytes, shape: tuple[int, ...] | list[int]) -> torch.Tensor:
    """Unpack :func:`symbols_to_bytes` output.

    Args:
        data: little-endian float16 bytes.
        shape: the symbols' shape (``ReceivedFrame.symbols_shape``), every size >= 1.
    Returns:
        float32 tensor of ``shape``.
    Raises:
        ShapeError: an empty shape or a size < 1.
        PayloadError: ``len(data) != 2 * prod(shape)``, or NaN / inf values.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0 or min(shape) < 1:
        raise ShapeError(f"symbols shape must be non-empty with sizes >= 1, got {shape}")
    n = math.prod(shape)
    if len(data) != 2 * n:
        raise PayloadError(f"symbols hold {len(data)} bytes, shape {shape} needs {2 * n} (float16)")
    arr = np.frombuffer(data, dtype=_FLOAT16_LE).reshape(shape)
    if not np.isfinite(arr).all():
        raise PayloadError("received symbols hold NaN or inf")
    return torch.from_numpy(arr.astype(np.float32))
