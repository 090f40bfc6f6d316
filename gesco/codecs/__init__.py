"""Map codecs and exact bit accounting.

The sender codes the present maps ``(N, H, W)`` (uint8 in {0, 1}) of a semantic layout
into the frame's payload; the channel decodes them back to the symbols it transmits.

    >>> codec = get_codec("context")
    >>> enc = codec.encode(maps)                       # EncodedMaps, .payload bytes
    >>> codec.decode(enc.payload, *maps.shape)         # == maps (lossless)
    >>> frame_bits(frame)                              # (payload_bits, header_bits)

Codecs: ``"raw"`` (packed bits), ``"zlib"``, ``"lzma"``, ``"contour"``, ``"context"``
(lossless; ``"context"`` is the default), ``"downsample"`` (lossy, fewer channel uses).
See ``docs/bit_budget.md``.
"""

from gesco.codecs.accounting import (
    SIMULATION_FIELDS,
    frame_bits,
    header_breakdown,
    header_message,
    link_frame_bytes,
    link_header_bytes,
)
from gesco.codecs.base import EncodedMaps, Layout, MapCodec, check_maps, merge_maps, split_maps
from gesco.codecs.budget import ImageBits, image_bits
from gesco.codecs.downsample import DownsampleCodec, downsample_maps
from gesco.codecs.lossless import ContextCodec, ContourCodec, LosslessCodec, LzmaCodec, RawCodec, ZlibCodec
from gesco.codecs.registry import CODECS, DEFAULT_CODEC, codec_names, get_codec

__all__ = [
    "CODECS",
    "ContextCodec",
    "ContourCodec",
    "DEFAULT_CODEC",
    "DownsampleCodec",
    "EncodedMaps",
    "ImageBits",
    "Layout",
    "LosslessCodec",
    "LzmaCodec",
    "MapCodec",
    "RawCodec",
    "SIMULATION_FIELDS",
    "ZlibCodec",
    "check_maps",
    "codec_names",
    "downsample_maps",
    "frame_bits",
    "get_codec",
    "header_breakdown",
    "header_message",
    "image_bits",
    "link_frame_bytes",
    "link_header_bytes",
    "merge_maps",
    "split_maps",
]
