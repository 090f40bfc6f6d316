"""Bits of the "classical" alternative: the image itself, raw, as PNG, as JPEG.

The sender fills ``SemanticFrame.png_bits`` / ``jpeg_bits`` with these numbers so that
every transmission's budget can compare the semantic maps with sending the image at
the same resolution (paper section 4: 1,464,000 bits for a 256x512 image vs 119,000
for the maps).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gesco.errors import DTypeError, GescoInputError, ShapeError


@dataclass(frozen=True)
class ImageBits:
    """Sizes of one RGB image in bits.

    Attributes:
        raw: ``H * W * 24`` (8 bits per colour channel, no compression).
        png: the PNG file (OpenCV, compression level 9, lossless).
        jpeg: the JPEG file at ``jpeg_quality`` (OpenCV / libjpeg, 4:2:0, lossy).
        jpeg_quality: the JPEG quality used (1-100).
    """

    raw: int
    png: int
    jpeg: int
    jpeg_quality: int


def image_bits(rgb: np.ndarray, jpeg_quality: int = 75) -> ImageBits:
    """Encode ``rgb`` as PNG and JPEG and count the bytes of each file, times 8.

    Args:
        rgb: ``(H, W, 3)`` uint8 image, RGB channel order.
        jpeg_quality: JPEG quality in [1, 100] (75 is libjpeg's default).
    Raises:
        ShapeError, DTypeError: not an ``(H, W, 3)`` uint8 array; GescoInputError: bad quality.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ShapeError(f"image must be (H, W, 3), got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise DTypeError(f"image must be uint8, got {rgb.dtype}")
    if isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, (int, np.integer)) or not 1 <= jpeg_quality <= 100:
        raise GescoInputError(f"JPEG quality must be an integer in [1, 100], got {jpeg_quality!r}")
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # OpenCV expects BGR
    ok_png, png = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    ok_jpg, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not (ok_png and ok_jpg):  # pragma: no cover - OpenCV does not fail on valid uint8 images
        raise GescoInputError("OpenCV could not encode the image")
    h, w = rgb.shape[:2]
    return ImageBits(raw=h * w * 24, png=8 * len(png), jpeg=8 * len(jpg), jpeg_quality=int(jpeg_quality))
