"""Uploads: PNG / JPEG files checked from their headers, then decoded with limits.

The format is read from the file's first bytes and the pixel size and sample depth from its
header before any pixel is decoded (:mod:`gesco.image_header`), so an oversized or
memory-expensive upload is refused without allocating it. Images come out as ``(H, W, 3)``
uint8 RGB turned upright (a JPEG's EXIF orientation is honoured); label and instance maps
as ``(H, W)`` integer ids in the file's own type (PNG only: JPEG would alter ids).
"""

from __future__ import annotations

import cv2
import numpy as np

from gesco.errors import DTypeError, GescoInputError, ImageDecodeError, ShapeError
from gesco.image_header import ImageInfo, UnsupportedImageError, apply_orientation, image_info, png_metadata_bytes

__all__ = [
    "DEFAULT_MAX_DECODED_BYTES",
    "DEFAULT_MAX_PIXELS",
    "ImageTooLargeError",
    "UnsupportedImageError",
    "decode_image",
    "decode_label_map",
    "encode_png",
    "image_header",
]

#: largest upload a caller should accept by default, in pixels (width * height)
DEFAULT_MAX_PIXELS = 16_000_000
#: most bytes of metadata chunks (text, colour profiles, ...) a PNG upload may carry
MAX_PNG_METADATA_BYTES = 1024 * 1024
#: largest decoded size of one upload by default, in bytes (stored samples + the 8-bit
#: RGB copy): a 12 MP phone photo (4000 x 3000 JPEG) needs 72 MB, a 16-bit RGBA
#: 4000 x 4000 PNG 176 MB
DEFAULT_MAX_DECODED_BYTES = 96 * 1024 * 1024


class ImageTooLargeError(GescoInputError):
    """An upload is larger than the configured limit, in bytes or pixels (HTTP 413)."""


def image_header(data: bytes) -> tuple[str, int, int]:
    """Format and stored pixel size of a PNG or JPEG file from its header, without decoding it.

    Returns:
        ``(format, height, width)`` with format ``"png"`` or ``"jpeg"``
        (:func:`gesco.image_header.image_info` has the rest of the header).
    Raises:
        UnsupportedImageError: neither a PNG nor a JPEG signature.
        ImageDecodeError: the signature is right but the header is truncated or corrupt.
    """
    info = image_info(data)
    return info.format, info.height, info.width


def _check_upload(data: bytes, what: str, max_bytes: int | None, max_pixels: int | None,
                  max_decoded_bytes: int | None = None, out_channels: int = 3) -> ImageInfo:
    """Size checks of an upload from its header: bytes, pixels, and bytes once decoded."""
    if len(data) == 0:
        raise UnsupportedImageError(f"{what} is empty (0 bytes)")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageTooLargeError(f"{what} is {len(data)} bytes, the limit is {max_bytes}")
    info = image_info(data)
    height, width = info.height, info.width
    if info.format == "png" and (meta := png_metadata_bytes(data)) > MAX_PNG_METADATA_BYTES:
        raise ImageTooLargeError(f"{what} carries {meta} bytes of PNG metadata chunks (text, profiles), "
                                 f"the limit is {MAX_PNG_METADATA_BYTES}")
    if max_pixels is not None and height * width > max_pixels:
        raise ImageTooLargeError(f"{what} is {width}x{height} = {height * width} pixels, the limit is {max_pixels}")
    cost = info.decoded_bytes(out_channels)
    if max_decoded_bytes is not None and cost > max_decoded_bytes:
        raise ImageTooLargeError(
            f"{what} is {width}x{height} with {info.channels} channel(s) of {8 * info.bytes_per_sample} bits: "
            f"{cost} bytes once decoded, the limit is {max_decoded_bytes}"
        )
    return info


def decode_image(data: bytes, max_bytes: int | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 max_decoded_bytes: int | None = DEFAULT_MAX_DECODED_BYTES) -> np.ndarray:
    """Decode an uploaded PNG or JPEG to ``(H, W, 3)`` uint8 RGB, turned upright.

    Greyscale is expanded to three channels, an alpha channel is dropped, 16-bit PNGs are
    scaled to 8 bits. A JPEG's EXIF orientation is honoured (the result is the upright
    image; orientations 5-8 swap height and width), see :mod:`gesco.image_header`.

    Raises:
        UnsupportedImageError: not a PNG or JPEG (or empty).
        ImageTooLargeError: more than ``max_bytes`` bytes, ``max_pixels`` pixels, or
            ``max_decoded_bytes`` bytes once decoded (checked on the header, before decoding).
        ImageDecodeError: a PNG / JPEG that does not decode (truncated, corrupt).
    """
    info = _check_upload(data, "image", max_bytes, max_pixels, max_decoded_bytes)
    # the stored pixels (OpenCV would apply the orientation itself, only for some formats)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None or bgr.shape[:2] != (info.height, info.width):
        raise ImageDecodeError(f"corrupt {info.format.upper()}: the image data does not decode")
    return apply_orientation(bgr[:, :, ::-1], info.orientation)


def decode_label_map(
    data: bytes,
    what: str = "label map",
    max_bytes: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_decoded_bytes: int | None = DEFAULT_MAX_DECODED_BYTES,
) -> np.ndarray:
    """Decode an uploaded label or instance map (a PNG of integer ids) to ``(H, W)`` ids.

    8- or 16-bit, one channel (or three equal channels). JPEG is refused: its lossy
    compression changes ids. The ids keep the file's integer type (uint8 / uint16), so
    a map costs what its samples cost, not 8 bytes a pixel. PNG maps are never turned
    (no EXIF orientation).

    Raises:
        UnsupportedImageError: not a PNG (JPEG included).
        ImageTooLargeError, ImageDecodeError: as :func:`decode_image`.
        ShapeError: three channels that differ (a colour image, not a map of ids).
    """
    info = _check_upload(data, what, max_bytes, max_pixels, max_decoded_bytes, out_channels=0)
    if info.format != "png":
        raise UnsupportedImageError(f"{what} must be a PNG of class ids; JPEG would alter the ids")
    m = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if m is None or m.shape[:2] != (info.height, info.width):
        raise ImageDecodeError(f"corrupt PNG: the {what} does not decode")
    if m.ndim == 3:
        if m.shape[2] == 4:
            m = m[:, :, :3]
        if not (np.array_equal(m[..., 0], m[..., 1]) and np.array_equal(m[..., 0], m[..., 2])):
            raise ShapeError(f"{what} has {m.shape[2]} differing colour channels; expected one channel of ids")
        m = m[..., 0]
    return np.ascontiguousarray(m)


def encode_png(image: np.ndarray) -> bytes:
    """``(H, W, 3)`` uint8 RGB or ``(H, W)`` uint8 grey -> PNG bytes."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise DTypeError(f"PNG output must be (H, W) or (H, W, 3) uint8, got {arr.shape} {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[:, :, ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:  # pragma: no cover - OpenCV does not fail on valid uint8 arrays
        raise GescoInputError("OpenCV could not encode a PNG")
    return buf.tobytes()
