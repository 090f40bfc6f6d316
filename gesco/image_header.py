"""What a PNG / JPEG file's header says, read without decoding a pixel.

:func:`image_info` gives the format, the stored pixel size, the number of channels and
bytes per sample (so that a caller can refuse an upload whose *decoded* size is over a
budget before allocating it: a 222 KB PNG can declare 4000 x 4000 16-bit RGBA, 128 MB
once decoded) and, for JPEG, the EXIF orientation tag.

EXIF orientation (tag 0x0112, values 1-8) says how the stored pixels must be turned to
be shown upright; phone cameras store portrait photos sideways with orientation 6 or
8. gesco **honours** it for images: :func:`apply_orientation` turns the decoded pixels
upright (the same transforms as PIL's ``ImageOps.exif_transpose``), so the sender sees
the photo as a viewer does, and a label map uploaded with it must match the upright
image. Label and instance maps are PNGs of ids and are never turned.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from gesco.errors import ImageDecodeError


class UnsupportedImageError(ImageDecodeError):
    """The bytes are not a PNG or JPEG file at all (HTTP 415)."""


@dataclass(frozen=True)
class ImageInfo:
    """Header facts of an image file.

    Attributes:
        format: ``"png"`` or ``"jpeg"``.
        height, width: the stored pixel size (before any EXIF orientation).
        channels: samples per pixel as stored (PNG colour type; JPEG components).
        bytes_per_sample: 1 or 2 (16-bit PNG).
        orientation: EXIF orientation 1-8 (1 when there is none, always 1 for PNG).
    """

    format: str
    height: int
    width: int
    channels: int
    bytes_per_sample: int = 1
    orientation: int = 1

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def decoded_bytes(self, out_channels: int = 3) -> int:
        """Bytes the decoder allocates: the stored samples plus an ``out_channels`` 8-bit copy."""
        return self.pixels * (self.channels * self.bytes_per_sample + out_channels)

    @property
    def upright_shape(self) -> tuple[int, int]:
        """``(height, width)`` after the EXIF orientation (5-8 swap the sides)."""
        return (self.width, self.height) if self.orientation >= 5 else (self.height, self.width)


#: channels per PNG colour type (0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA); a
#: palette image decodes to RGB(A)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_info(data: bytes) -> ImageInfo:
    """Parse the header of a PNG or JPEG file.

    Raises:
        UnsupportedImageError: neither a PNG nor a JPEG signature.
        ImageDecodeError: the signature is right but the header is truncated or corrupt.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        # the first chunk must be IHDR: length (4), "IHDR", width (4), height (4), depth (1), colour type (1)
        if len(data) < 26 or data[12:16] != b"IHDR":
            raise ImageDecodeError("corrupt PNG: no IHDR header chunk")
        width, height = struct.unpack(">II", data[16:24])
        depth, colour = data[24], data[25]
        if width == 0 or height == 0:
            raise ImageDecodeError(f"corrupt PNG: header says {width}x{height} pixels")
        if colour not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16):
            raise ImageDecodeError(f"corrupt PNG: colour type {colour} with bit depth {depth}")
        return ImageInfo("png", height, width, _PNG_CHANNELS[colour], 2 if depth == 16 else 1)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg_info(data)
    raise UnsupportedImageError("not a PNG or JPEG file (unrecognised signature in the first bytes)")


#: PNG chunks that carry the image; every other chunk is metadata (text, profiles, ...)
_PNG_IMAGE_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS"})


def png_metadata_bytes(data: bytes) -> int:
    """Bytes of a PNG's metadata chunks (``tEXt``, ``zTXt``, ``iTXt``, ``iCCP``, ``eXIf``, ...).

    Walks the chunk headers only (8 bytes each), so it costs microseconds; a truncated
    last chunk counts what is there. libpng refuses (``NULL`` from OpenCV) a file whose
    metadata exceeds its own allocation limit, which would otherwise read as "corrupt".
    """
    total, i = 0, 8
    while i + 8 <= len(data):
        length = struct.unpack(">I", data[i : i + 4])[0]
        kind = data[i + 4 : i + 8]
        if kind not in _PNG_IMAGE_CHUNKS:
            total += min(length, len(data) - i - 8)
        if kind == b"IEND":
            break
        i += 12 + length
    return total


def _jpeg_info(data: bytes) -> ImageInfo:
    """Walk the JPEG markers up to the first start-of-frame; read APP1 EXIF on the way."""
    i, n = 2, len(data)
    orientation = 1
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ImageDecodeError(f"corrupt JPEG: expected a marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            raise ImageDecodeError(f"corrupt JPEG: segment length {length} at byte {i}")
        if marker == 0xE1 and orientation == 1:
            orientation = exif_orientation(data[i + 4 : i + 2 + length])
        if marker in _JPEG_SOF:
            if i + 10 > n:
                break
            return _jpeg_frame(data, i, orientation)
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += 2 + length
    raise ImageDecodeError("corrupt JPEG: no frame header (SOF) found")


def _jpeg_frame(data: bytes, i: int, orientation: int) -> ImageInfo:
    """The image size and components of the start-of-frame segment at byte ``i``."""
    height, width = struct.unpack(">HH", data[i + 5 : i + 9])
    components = data[i + 9]
    if width == 0 or height == 0:
        raise ImageDecodeError(f"corrupt JPEG: frame header says {width}x{height} pixels")
    if components not in (1, 3, 4):
        raise ImageDecodeError(f"corrupt JPEG: {components} colour components")
    return ImageInfo("jpeg", height, width, components, 1, orientation)


def exif_orientation(segment: bytes) -> int:
    """The orientation tag (1-8) of an APP1 segment's body; 1 when absent or unreadable.

    Args:
        segment: the APP1 body after the length field (``b"Exif\\0\\0"`` + a TIFF structure).
    """
    if not segment.startswith(b"Exif\x00\x00") or len(segment) < 14:
        return 1
    tiff = segment[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    try:
        (magic, ifd) = struct.unpack(order + "HI", tiff[2:8])
        if magic != 42 or ifd + 2 > len(tiff):
            return 1
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for k in range(min(count, 512)):
            entry = tiff[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
            if len(entry) < 12:
                return 1
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag == 0x0112 and kind == 3:  # SHORT
                (value,) = struct.unpack(order + "H", entry[8:10])
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn ``(H, W, ...)`` stored pixels upright for an EXIF ``orientation`` (1-8).

    2 mirrors left-right, 3 turns 180 degrees, 4 mirrors top-bottom, 5 transposes,
    6 turns 90 degrees clockwise, 7 transposes across the other diagonal, 8 turns 90
    degrees counter-clockwise. Returns a C-contiguous array.
    """
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops.get(int(orientation), ops[1])(pixels))
