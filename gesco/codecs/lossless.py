"""Lossless map codecs: the channel sends the maps themselves, the payload is exact.

* ``"raw"``: one bit per map pixel (``np.packbits``), ``N * H * W`` bits rounded up to bytes;
  what "sending binary maps" costs without compression.
* ``"zlib"``: the raw bits through DEFLATE (level 9); the obvious general-purpose baseline.
* ``"lzma"``: the layout split (label-index map + edge residual, see
  :func:`gesco.codecs.base.split_maps`) as bytes through LZMA2 (preset 9, extreme).
* ``"contour"``: the layout split coded row by row relative to the row above, as runs,
  with our own adaptive binary range coder (:mod:`gesco.codecs.contour`).
* ``"context"`` (the default, :data:`DEFAULT_LOSSLESS`): the layout split coded pixel by
  pixel with a context-adaptive arithmetic coder, the range coder of the ``constriction``
  package driven by our context model (:mod:`gesco.codecs.context`); the fewest bits on
  the synthetic validation scenes at 64x128 and 256x512 (see ``docs/bit_budget.md``).

Every ``decode`` checks the payload against the header shape and raises
:class:`~gesco.errors.PayloadError` for an empty, truncated, over-long or corrupt
payload. (Payloads carry no checksum: the transport is trusted for integrity, so a
corruption that still decodes to valid maps cannot be detected.)
"""

from __future__ import annotations

import lzma
import zlib

import numpy as np

from gesco.codecs.base import (
    EncodedMaps,
    check_maps,
    check_shape,
    component_specs,
    merge_maps,
    parse_layout_byte,
    split_maps,
)
from gesco.codecs.context import StreamPair, StreamReader, decode_component, encode_component, label_stream_width
from gesco.codecs.contour import decode_label_map, encode_label_map
from gesco.codecs.rangecoder import RangeDecoder, RangeEncoder
from gesco.defaults import DEFAULT_CODEC
from gesco.errors import PayloadError, ShapeError


class LosslessCodec:
    """Shared behaviour: the channel sends the decoded maps, the receiver keeps them as they are."""

    name = ""
    lossless = True

    def params(self) -> dict[str, int | str]:
        return {}

    def encode(self, maps: np.ndarray) -> EncodedMaps:
        maps = check_maps(maps)
        n, h, w = maps.shape
        return EncodedMaps(self._encode(maps), self.name, self.params(), n, h, w)

    def decode(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        check_shape(n_maps, height, width)
        if len(payload) == 0:
            raise PayloadError("payload is empty")
        return self._decode(bytes(payload), n_maps, height, width)

    def channel_shape(self, n_maps: int, height: int, width: int) -> tuple[int, int, int]:
        return (n_maps, height, width)

    def channel_symbols(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        return self.decode(payload, n_maps, height, width)

    def upsample(self, received, height: int, width: int):
        """Identity (the channel already carried full-resolution maps); checks the size."""
        if tuple(received.shape[-2:]) != (height, width):
            raise ShapeError(f"received maps are {tuple(received.shape[-2:])}, expected {(height, width)}")
        return received

    def _encode(self, maps: np.ndarray) -> bytes:
        raise NotImplementedError

    def _decode(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _unpack_bits(data: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
    """Bytes of ``np.packbits`` -> ``(N, H, W)`` uint8; the padding bits must be zero."""
    n_bits = n_maps * height * width
    if len(data) != (n_bits + 7) // 8:
        raise PayloadError(f"payload holds {len(data)} bytes, ({n_maps}, {height}, {width}) bit maps need {(n_bits + 7) // 8}")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    if bits[n_bits:].any():
        raise PayloadError("corrupt payload: padding bits after the last map bit are not zero")
    return bits[:n_bits].reshape(n_maps, height, width)


class RawCodec(LosslessCodec):
    """One bit per map pixel, no compression (``N * H * W`` bits, rounded up to whole bytes)."""

    name = "raw"

    def _encode(self, maps: np.ndarray) -> bytes:
        return np.packbits(maps.reshape(-1)).tobytes()

    def _decode(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        return _unpack_bits(payload, n_maps, height, width)


class ZlibCodec(LosslessCodec):
    """The raw bits compressed with DEFLATE (zlib format, level 9, Adler-32 checked)."""

    name = "zlib"

    def _encode(self, maps: np.ndarray) -> bytes:
        return zlib.compress(np.packbits(maps.reshape(-1)).tobytes(), 9)

    def _decode(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        expected = (n_maps * height * width + 7) // 8
        d = zlib.decompressobj()
        try:
            data = d.decompress(payload, expected + 1)  # bounded: no decompression bomb
        except zlib.error as exc:
            raise PayloadError(f"corrupt zlib payload: {exc}") from None
        if not d.eof or d.unused_data or d.unconsumed_tail:
            raise PayloadError("zlib payload is truncated, over-long, or does not match the header shape")
        return _unpack_bits(data, n_maps, height, width)


def _lzma_filters(size: int) -> list[dict]:
    """LZMA2 at preset 9 (extreme) with a dictionary of the data's size (at least 4 KiB).

    Preset 9 alone allocates a 64 MiB dictionary in the decoder (and ~670 MiB in the
    encoder) whatever the frame's size: a 100-byte frame would cost 64 MiB to decode. A
    match can reach no further back than the data is long, so a dictionary of the data's
    size decodes every stream the preset encodes, and the encoder's output is the same
    (checked on the synthetic scenes at 64 x 128 and 256 x 512).
    """
    return [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": max(4096, int(size))}]


def _component_bytes(component: np.ndarray, alphabet: int) -> bytes:
    if alphabet == 2:
        return np.packbits(component.reshape(-1)).tobytes()
    return component.astype(np.uint8 if alphabet <= 256 else "<i4").tobytes()


def _component_size(alphabet: int, height: int, width: int) -> int:
    if alphabet == 2:
        return (height * width + 7) // 8
    return height * width * (1 if alphabet <= 256 else 4)


class LzmaCodec(LosslessCodec):
    """Layout split (label-index map bytes + packed edge residual) through raw LZMA2.

    Payload: one layout byte (:class:`~gesco.codecs.base.Layout`), then the LZMA2 stream.
    """

    name = "lzma"

    def _encode(self, maps: np.ndarray) -> bytes:
        layout, components = split_maps(maps)
        data = b"".join(_component_bytes(c, a) for c, a in components)
        return bytes([layout]) + lzma.compress(data, format=lzma.FORMAT_RAW, filters=_lzma_filters(len(data)))

    def _decode(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        layout = parse_layout_byte(payload)
        alphabets = component_specs(layout, n_maps)
        sizes = [_component_size(a, height, width) for a in alphabets]
        d = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_lzma_filters(sum(sizes)))
        try:
            data = d.decompress(payload[1:], sum(sizes) + 1)
        except lzma.LZMAError as exc:
            raise PayloadError(f"corrupt lzma payload: {exc}") from None
        if len(data) != sum(sizes) or not d.eof or d.unused_data:
            raise PayloadError("lzma payload is truncated, over-long, or does not match the header shape")
        components, offset = [], 0
        for alphabet, size in zip(alphabets, sizes):
            chunk = data[offset : offset + size]
            offset += size
            if alphabet == 2:
                components.append(_unpack_bits(chunk, 1, height, width)[0])
            else:
                dtype = np.uint8 if alphabet <= 256 else np.dtype("<i4")
                components.append(np.frombuffer(chunk, dtype=dtype).reshape(height, width))
        return merge_maps(layout, components, n_maps)


class ContourCodec(LosslessCodec):
    """Layout split coded row by row against the row above with an arithmetic coder.

    Payload: one layout byte, then one range-coded stream holding each component
    (:func:`gesco.codecs.contour.encode_label_map`) in order.
    """

    name = "contour"

    def _encode(self, maps: np.ndarray) -> bytes:
        layout, components = split_maps(maps)
        enc = RangeEncoder()
        for component, alphabet in components:
            encode_label_map(enc, component, alphabet)
        return bytes([layout]) + enc.finish()

    def _decode(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        layout = parse_layout_byte(payload)
        dec = RangeDecoder(payload[1:])
        components = [decode_label_map(dec, height, width, a) for a in component_specs(layout, n_maps)]
        dec.check_end()
        return merge_maps(layout, components, n_maps)


class ContextCodec(LosslessCodec):
    """Layout split coded pixel-wise with a context-adaptive arithmetic coder (``constriction``).

    Payload: one layout byte, then the two ``constriction`` range-coded streams of
    :mod:`gesco.codecs.context` (flags, labels) holding each component in order.
    ``decode`` codes the symbols it decoded again (with the probabilities it decoded them
    with) and refuses the payload unless that gives its bytes back, so a truncated,
    over-long or corrupt payload raises :class:`~gesco.errors.PayloadError`. Work and memory are bounded by the header shape
    (a few ``H * W`` int64 arrays and tables of at most ``(K + 1) * K`` counts), whatever
    the payload holds.
    """

    name = "context"

    def _encode(self, maps: np.ndarray) -> bytes:
        layout, components = split_maps(maps)
        streams = StreamPair(label_stream_width([a for _, a in components]))
        for component, alphabet in components:
            encode_component(streams, component, alphabet)
        return bytes([layout]) + streams.finish()

    def _decode(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        layout = parse_layout_byte(payload)
        alphabets = component_specs(layout, n_maps)
        reader = StreamReader(payload[1:], label_stream_width(alphabets))
        components = [decode_component(reader, height, width, a) for a in alphabets]
        reader.check_exact()  # the streams hold exactly the decoded symbols, nothing more or less
        return merge_maps(layout, components, n_maps)


#: the sender's default lossless codec and the downsample codec's default inner codec
#: (:data:`gesco.defaults.DEFAULT_CODEC`, where the choice is explained)
DEFAULT_LOSSLESS = DEFAULT_CODEC

#: the lossless codecs by registry name
LOSSLESS_CODECS: dict[str, type[LosslessCodec]] = {
    c.name: c for c in (RawCodec, ZlibCodec, LzmaCodec, ContourCodec, ContextCodec)
}
