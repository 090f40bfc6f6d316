"""The lean link header: what a real link must send beside the payload, bit-packed.

A ``SemanticFrame`` carries, for the simulation, much that a real link would not send: a
frame / job id string (a 32-character hex id is 272 bits), the class space's name and size,
the codec's name as text. What a receiver does **not** already know is far less; this
module packs exactly that, and :func:`gesco.codecs.frame_bits` counts these bytes as the
frame's header bits.

Counted, in this order (``LinkHeader``; bits MSB first, zero-padded to whole bytes):

=================  =========================================================================
field              bits
=================  =========================================================================
frame number       16: the sender's frame counter modulo 2^16 (like an RTP sequence number)
height, width      12 + 12: ``H - 1`` and ``W - 1`` (``1 <= H, W <= 4096``)
present classes    1 + either ``C`` (a bit set over the session's ``C`` classes) or a
                   run-length code (Elias-gamma of ``K``, then of each gap between
                   consecutive present ids), whichever is shorter (the bit set on a tie)
edge map           1: ``has_edges``
codec              3: index in :data:`CODEC_NUMBERS`
codec parameters   only for ``downsample``: 6 (``factor - 1``) + 3 (inner codec) + 1
                   (upsampling: nearest / bilinear)
power scale        1 + (32 if present): float32 ``s`` of the channel, once it set one
payload length     Elias-gamma of ``len(payload) + 1`` bytes (framing)
=================  =========================================================================

**Not counted**, because the receiver already knows it or it is bookkeeping:

* the frame / job id: each hop keeps the mapping (frame number -> id) of the frames in
  flight itself; the simulation carries the id in ``SemanticFrame.id`` beside the counted
  bits, the way it carries ``png_bits``;
* the class space's name and size (``class_space``, ``num_classes``): fixed per session
  (the receiver's model is trained on one class space);
* the simulation-only fields (:data:`gesco.codecs.accounting.SIMULATION_FIELDS`).

:func:`parse_link_header` reads the bytes back, given the session's class count, and
refuses (:class:`~gesco.errors.PayloadError`) truncated or impossible headers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from gesco.errors import PayloadError

FRAME_NUMBER_BITS = 16
SIDE_BITS = 12  # H - 1 and W - 1: sides 1 .. 4096 (gesco.wire.frames.MAX_FRAME_SIDE)
#: codec numbers on the link; new codecs are appended (the numbers are part of the format)
CODEC_NUMBERS: tuple[str, ...] = ("raw", "zlib", "lzma", "contour", "context", "downsample")
CODEC_BITS = 3
FACTOR_BITS = 6  # downsample factor - 1: 1 .. 64
UPSAMPLE_MODES: tuple[str, ...] = ("nearest", "bilinear")


@dataclass(frozen=True)
class LinkHeader:
    """The fields of a lean link header (see the module docstring)."""

    frame_number: int
    height: int
    width: int
    class_ids: tuple[int, ...]
    has_edges: bool
    codec: str
    codec_params: dict[str, int | str] = field(default_factory=dict)
    power_scale: float = 0.0
    payload_length: int = 0


class _BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []
        self.marks: dict[str, int] = {}

    def uint(self, value: int, n: int) -> None:
        if not 0 <= value < (1 << n):
            raise PayloadError(f"link header: {value} does not fit {n} bits")
        self.bits.extend((value >> i) & 1 for i in range(n - 1, -1, -1))

    def gamma(self, value: int) -> None:
        """Elias-gamma code of ``value >= 1``: ``2 floor(log2 v) + 1`` bits."""
        n = value.bit_length()
        self.bits.extend([0] * (n - 1))
        self.uint(value, n)

    def mark(self, name: str) -> None:
        self.marks[name] = len(self.bits)

    def to_bytes(self) -> bytes:
        padded = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, padded[i : i + 8])), 2) for i in range(0, len(padded), 8))


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self, n: int) -> int:
        if self.pos + n > 8 * len(self.data):
            raise PayloadError("link header is truncated")
        value = 0
        for _ in range(n):
            value = (value << 1) | ((self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def gamma(self, max_bits: int = 40) -> int:
        zeros = 0
        while self.uint(1) == 0:
            zeros += 1
            if zeros >= max_bits:
                raise PayloadError("link header: an Elias-gamma code is too long")
        return (1 << zeros) | self.uint(zeros)


def _gamma_bits(value: int) -> int:
    return 2 * value.bit_length() - 1


def _run_length_bits(class_ids: list[int]) -> int:
    gaps = [b - a for a, b in zip([-1] + class_ids[:-1], class_ids)]
    return _gamma_bits(len(class_ids)) + sum(_gamma_bits(g) for g in gaps)


def _write(header: LinkHeader, num_classes: int) -> _BitWriter:
    w = _BitWriter()
    w.mark("frame_number")
    w.uint(header.frame_number % (1 << FRAME_NUMBER_BITS), FRAME_NUMBER_BITS)
    w.mark("shape")
    w.uint(header.height - 1, SIDE_BITS)
    w.uint(header.width - 1, SIDE_BITS)
    w.mark("classes")
    ids = sorted(int(c) for c in header.class_ids)
    if not ids or ids[0] < 0 or ids[-1] >= num_classes or len(set(ids)) != len(ids):
        raise PayloadError(f"link header: class ids {ids} are not distinct ids in [0, {num_classes})")
    if _run_length_bits(ids) < num_classes:
        w.uint(1, 1)
        w.gamma(len(ids))
        for a, b in zip([-1] + ids[:-1], ids):
            w.gamma(b - a)
    else:
        w.uint(0, 1)
        present = set(ids)
        for c in range(num_classes):
            w.uint(int(c in present), 1)
    w.mark("has_edges")
    w.uint(int(header.has_edges), 1)
    w.mark("codec")
    if header.codec not in CODEC_NUMBERS:
        raise PayloadError(f"link header: codec {header.codec!r} has no link number")
    w.uint(CODEC_NUMBERS.index(header.codec), CODEC_BITS)
    w.mark("codec_params")
    if header.codec == "downsample":
        p = header.codec_params
        w.uint(int(p.get("factor", 2)) - 1, FACTOR_BITS)
        w.uint(CODEC_NUMBERS.index(str(p.get("inner", _default_inner()))), CODEC_BITS)
        w.uint(UPSAMPLE_MODES.index(str(p.get("upsample", "nearest"))), 1)
    w.mark("power_scale")
    if header.power_scale:
        w.uint(1, 1)
        w.uint(struct.unpack(">I", struct.pack(">f", header.power_scale))[0], 32)
    else:
        w.uint(0, 1)
    w.mark("payload_length")
    w.gamma(header.payload_length + 1)
    w.mark("padding")
    return w


def _default_inner() -> str:
    from gesco.codecs.lossless import DEFAULT_LOSSLESS

    return DEFAULT_LOSSLESS


def header_from_frame(frame: Any, frame_number: int = 0) -> LinkHeader:
    """The :class:`LinkHeader` of a ``SemanticFrame`` (duck-typed protobuf message)."""
    params: dict[str, int | str] = {}
    if frame.codec_params.factor:
        params["factor"] = int(frame.codec_params.factor)
    if frame.codec_params.inner:
        params["inner"] = frame.codec_params.inner
    if frame.codec_params.upsample:
        params["upsample"] = frame.codec_params.upsample
    return LinkHeader(
        frame_number=int(frame_number), height=int(frame.height), width=int(frame.width),
        class_ids=tuple(int(c) for c in frame.class_ids), has_edges=bool(frame.has_edges), codec=frame.codec,
        codec_params=params, power_scale=float(frame.power_scale), payload_length=len(frame.payload),
    )


def pack_link_header(header: LinkHeader, num_classes: int) -> bytes:
    """The header's bytes (``num_classes``: the session's class-space size ``C``).

    Raises:
        PayloadError: a field that the format cannot hold (unknown codec, class ids
            outside ``[0, C)``, a side outside ``1 .. 4096``).
    """
    return _write(header, num_classes).to_bytes()


def link_header_fields(header: LinkHeader, num_classes: int) -> dict[str, int]:
    """Bits of each part of the packed header (they add up to ``8 * len(pack_link_header(...))``)."""
    w = _write(header, num_classes)
    names = list(w.marks)
    ends = [w.marks[n] for n in names[1:]] + [len(w.bits) + (-len(w.bits) % 8)]
    return {n: end - w.marks[n] for n, end in zip(names, ends)}


def parse_link_header(data: bytes, num_classes: int) -> LinkHeader:
    """Read a header written by :func:`pack_link_header` (exactly its bytes).

    Raises:
        PayloadError: truncated bytes, an unknown codec number, impossible class ids,
            non-zero padding or trailing bytes.
    """
    r = _BitReader(data)
    header = _read(r, num_classes)
    if 8 * len(data) - r.pos >= 8:
        raise PayloadError("link header has trailing bytes")
    return header


def parse_link_frame(data: bytes, num_classes: int) -> tuple[LinkHeader, bytes]:
    """Split what a link delivered (:func:`gesco.codecs.link_frame_bytes`) into header and payload.

    Raises:
        PayloadError: a bad header (see :func:`parse_link_header`), or a payload whose
            length is not the header's.
    """
    r = _BitReader(data)
    header = _read(r, num_classes)
    payload = data[(r.pos + 7) // 8 :]
    if len(payload) != header.payload_length:
        raise PayloadError(f"link frame holds {len(payload)} payload bytes, its header says {header.payload_length}")
    return header, payload


def _read(r: _BitReader, num_classes: int) -> LinkHeader:
    """Read the header's fields and its zero padding up to the next byte."""
    frame_number = r.uint(FRAME_NUMBER_BITS)
    height, width = r.uint(SIDE_BITS) + 1, r.uint(SIDE_BITS) + 1
    if r.uint(1):
        k = r.gamma()
        if k > num_classes:
            raise PayloadError(f"link header lists {k} classes of {num_classes}")
        ids, last = [], -1
        for _ in range(k):
            last += r.gamma()
            if last >= num_classes:
                raise PayloadError(f"link header: class id {last} outside [0, {num_classes})")
            ids.append(last)
    else:
        ids = [c for c in range(num_classes) if r.uint(1)]
    if not ids:
        raise PayloadError("link header lists no class")
    has_edges = bool(r.uint(1))
    codec = _codec_name(r.uint(CODEC_BITS))
    params: dict[str, int | str] = {}
    if codec == "downsample":
        params["factor"] = r.uint(FACTOR_BITS) + 1
        inner = _codec_name(r.uint(CODEC_BITS))
        if inner != _default_inner():
            params["inner"] = inner
        mode = UPSAMPLE_MODES[r.uint(1)]
        if mode != "nearest":
            params["upsample"] = mode
    power_scale = struct.unpack(">f", struct.pack(">I", r.uint(32)))[0] if r.uint(1) else 0.0
    payload_length = r.gamma() - 1
    if r.uint(-r.pos % 8):
        raise PayloadError("link header: non-zero padding bits")
    return LinkHeader(frame_number, height, width, tuple(ids), has_edges, codec, params, power_scale, payload_length)


def _codec_name(number: int) -> str:
    if number >= len(CODEC_NUMBERS):
        raise PayloadError(f"link header: unknown codec number {number}")
    return CODEC_NUMBERS[number]
