"""EXIF orientation and header facts of uploads (gesco.image_header, gesco.link.decode_image)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from services.svc_helpers import exif_app1, jpeg_with_orientation

from gesco.image_header import apply_orientation, exif_orientation, image_info
from gesco.link import ImageTooLargeError, decode_image, encode_png


def quadrants(h: int = 48, w: int = 96) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (255, 0, 0)
    img[: h // 2, w // 2 :] = (0, 255, 0)
    img[h // 2 :, : w // 2] = (0, 0, 255)
    img[h // 2 :, w // 2 :] = (255, 255, 0)
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("order", ["MM", "II"])
def test_exif_orientation_is_honoured_like_pil(orientation, order):
    from PIL import Image, ImageOps

    stored = quadrants()
    data = jpeg_with_orientation(stored, orientation, order)
    info = image_info(data)
    assert info.orientation == orientation and (info.height, info.width) == (48, 96)
    upright = decode_image(data)
    reference = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert upright.shape == reference.shape == (*info.upright_shape, 3)
    assert np.abs(upright.astype(int) - reference.astype(int)).mean() < 3.0  # two JPEG decoders


def test_apply_orientation_on_exact_pixels():
    a = np.arange(6).reshape(2, 3)
    assert apply_orientation(a, 6).tolist() == [[3, 0], [4, 1], [5, 2]]  # 90 degrees clockwise
    assert apply_orientation(a, 8).tolist() == [[2, 5], [1, 4], [0, 3]]
    assert apply_orientation(a, 1).tolist() == a.tolist()


def test_unreadable_exif_means_no_rotation():
    assert exif_orientation(b"Exif\x00\x00MM\x00*\xff\xff\xff\xff") == 1
    assert exif_orientation(b"nothing") == 1
    assert exif_orientation(exif_app1(9)[4:]) == 1  # out of range


def test_png_header_gives_channels_and_depth():
    info = image_info(encode_png(np.zeros((5, 7, 3), np.uint8)))
    assert (info.format, info.height, info.width, info.channels, info.bytes_per_sample) == ("png", 5, 7, 3, 1)
    ok, png16 = cv2.imencode(".png", np.zeros((5, 7), np.uint16))
    assert image_info(png16.tobytes()).bytes_per_sample == 2


def test_decoded_budget():
    data = encode_png(np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ImageTooLargeError, match="once decoded"):
        decode_image(data, max_decoded_bytes=100 * 100 * 5)
    assert decode_image(data, max_decoded_bytes=100 * 100 * 6).shape == (100, 100, 3)


def test_png_metadata_is_counted_and_a_huge_text_chunk_is_refused_as_too_large():
    """Issue 25: a valid PNG with a 19 MB text chunk was refused as 'corrupt'."""
    import struct
    import zlib

    import pytest

    from gesco.image_header import png_metadata_bytes
    from gesco.uploads import MAX_PNG_METADATA_BYTES, ImageTooLargeError, decode_image, encode_png

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = encode_png(np.zeros((8, 16, 3), np.uint8))
    assert png_metadata_bytes(png) == 0
    text = chunk(b"tEXt", b"comment\x00" + b"a" * (19 * 1024 * 1024))
    big = png[:33] + text + png[33:]  # after the signature (8) and IHDR (25)
    assert png_metadata_bytes(big) == 8 + 19 * 1024 * 1024
    with pytest.raises(ImageTooLargeError, match="metadata"):
        decode_image(big, max_bytes=20 * 1024 * 1024)
    small = png[:33] + chunk(b"tEXt", b"comment\x00hello") + png[33:]
    assert png_metadata_bytes(small) == 13 < MAX_PNG_METADATA_BYTES
    assert decode_image(small).shape[:2] == (8, 16)
