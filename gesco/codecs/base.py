"""What every map codec shares: the interface, input checks, and the layout split.

A codec turns the present maps of a semantic layout (``maps``: ``(N, H, W)`` uint8 in
{0, 1}, the ``K`` class maps in header order then the edge map when there is one; see
:class:`gesco.semantics.layout.SemanticLayout`) into payload bytes and back, and says
what the channel transmits:

* ``encode(maps) -> EncodedMaps`` (payload + the shape the decoder needs);
* ``decode(payload, n_maps, height, width) -> (N, H, W) uint8`` (the reconstruction:
  exact for lossless codecs);
* ``channel_symbols(payload, n_maps, height, width) -> (N, h, w) uint8``: the maps the
  channel sends, one real symbol per element (the full maps for lossless codecs, the
  downsampled maps for ``"downsample"``), and ``channel_shape`` the shape alone;
* ``upsample(received, height, width)``: how the receiver brings received symbols
  ``(..., N, h, w)`` back to ``(..., N, H, W)`` (identity for lossless codecs).

**The layout split.** When the class maps come from a label map they partition the
image (exactly one class map is 1 at every pixel). Then ``K`` planes hold no more
information than one *label-index map* (values ``0 .. K-1``), which is what the entropy
codecs code. The edge map, when present, is mostly the boundaries of that label map
(instance edges include every class boundary), so it is coded as its difference (XOR)
from the label map's own edges: only edges between touching instances of one class
remain. :func:`split_maps` finds which case holds and :func:`merge_maps` undoes it;
maps that are not a partition are coded plane by plane, so any binary input works.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from gesco.errors import DTypeError, PayloadError, ShapeError
from gesco.semantics.layout import instance_edges

#: largest map side a codec accepts (the frame validator allows less, see gesco.wire)
MAX_SIDE = 32767


@dataclass(frozen=True)
class EncodedMaps:
    """A codec's output.

    Attributes:
        payload: the coded bytes (what goes in ``SemanticFrame.payload``).
        codec: the codec's registry name.
        params: the codec's parameters (``get_codec(codec, **params)`` rebuilds it).
        n_maps, height, width: shape of the maps that were encoded (in the frame header).
    """

    payload: bytes
    codec: str
    params: dict[str, int | str] = field(default_factory=dict)
    n_maps: int = 0
    height: int = 0
    width: int = 0

    @property
    def payload_bits(self) -> int:
        """``8 * len(payload)``: the payload's exact size in bits."""
        return 8 * len(self.payload)


@runtime_checkable
class MapCodec(Protocol):
    """The interface of a map codec (see the module docstring)."""

    name: str
    lossless: bool

    def params(self) -> dict[str, int | str]:
        """Parameters that rebuild this codec with ``get_codec(name, **params)``."""
        ...

    def encode(self, maps: np.ndarray) -> EncodedMaps:
        """``maps``: ``(N, H, W)`` uint8/bool in {0, 1} -> coded payload."""
        ...

    def decode(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        """Payload -> ``(N, H, W)`` uint8 maps (exact for lossless codecs)."""
        ...

    def channel_shape(self, n_maps: int, height: int, width: int) -> tuple[int, int, int]:
        """Shape ``(N, h, w)`` of the symbols the channel sends for maps of this shape."""
        ...

    def channel_symbols(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        """Payload -> the ``(N, h, w)`` uint8 maps the channel transmits."""
        ...

    def upsample(self, received, height: int, width: int):
        """Received symbols ``(..., N, h, w)`` (numpy or torch) -> ``(..., N, H, W)``."""
        ...


class Layout(enum.IntEnum):
    """How :func:`split_maps` turned the planes into coded components."""

    PLANES = 0  # every plane coded on its own (binary)
    PARTITION = 1  # all planes partition the image: one label-index map
    PARTITION_EXTRA = 2  # the first N-1 planes partition the image, the last is coded as is
    PARTITION_EDGES = 3  # ... and the last is coded as XOR with the label map's edges


def check_maps(maps: np.ndarray) -> np.ndarray:
    """Validate codec input and return it as a C-contiguous uint8 array.

    Args:
        maps: ``(N, H, W)`` bool or integer array in {0, 1}, ``N, H, W >= 1``.
    Raises:
        ShapeError: wrong number of dimensions, an empty or too large side.
        DTypeError: a non-integer dtype or values other than 0 and 1.
    """
    if not isinstance(maps, np.ndarray):
        raise DTypeError(f"maps must be a numpy array, got {type(maps).__name__}")
    if maps.ndim != 3:
        raise ShapeError(f"maps must be (N, H, W), got shape {maps.shape}")
    if min(maps.shape) < 1:
        raise ShapeError(f"maps must not be empty, got shape {maps.shape}")
    if max(maps.shape[1:]) > MAX_SIDE:
        raise ShapeError(f"map sides are limited to {MAX_SIDE} pixels, got shape {maps.shape}")
    if maps.dtype != np.bool_ and not np.issubdtype(maps.dtype, np.integer):
        raise DTypeError(f"maps must be bool or integer in {{0, 1}}, got dtype {maps.dtype}")
    out = np.ascontiguousarray(maps, dtype=np.uint8) if maps.dtype == np.bool_ else maps
    if out.dtype != np.uint8:
        if out.min() < 0 or out.max() > 1:
            raise DTypeError("maps must hold only 0 and 1")
        out = out.astype(np.uint8)
    elif out.max() > 1:
        raise DTypeError("maps must hold only 0 and 1")
    return np.ascontiguousarray(out)


def check_shape(n_maps: int, height: int, width: int) -> None:
    """Validate the shape a decoder is asked to produce (from a frame header)."""
    if min(n_maps, height, width) < 1:
        raise ShapeError(f"cannot decode maps of shape ({n_maps}, {height}, {width}): every size must be >= 1")
    if max(height, width) > MAX_SIDE:
        raise ShapeError(f"map sides are limited to {MAX_SIDE} pixels, got {height}x{width}")


def partition_label(planes: np.ndarray) -> np.ndarray | None:
    """The label-index map of planes that partition the image, or None if they do not.

    Args:
        planes: ``(K, H, W)`` uint8 in {0, 1}.
    Returns:
        ``(H, W)`` uint8 (``K <= 256``) or int32 map ``l`` with ``planes[l[y, x], y, x] == 1``,
        when exactly one plane is 1 at every pixel; otherwise None.
    """
    n = planes.shape[0]
    dtype = np.uint8 if n <= 256 else np.int32
    count = planes[0].astype(np.uint16 if n < 65536 else np.int64)
    label = np.zeros(planes.shape[1:], dtype=dtype)
    # one pass per plane (much faster than argmax / sum over the first axis)
    for i in range(1, n):
        count += planes[i]
        label += planes[i].astype(dtype) * dtype(i)
    return label if bool(np.all(count == 1)) else None


def _is_partition(planes: np.ndarray) -> bool:
    return partition_label(planes) is not None


def split_maps(maps: np.ndarray) -> tuple[Layout, list[tuple[np.ndarray, int]]]:
    """Turn ``(N, H, W)`` binary maps into components ``(map, alphabet)`` to code.

    Returns:
        ``(layout, components)``: for ``PARTITION*`` the first component is the
        ``(H, W)`` uint8/int32 label-index map (alphabet ``K``), then the extra plane
        (alphabet 2); for ``PLANES`` one binary component per plane.
    """
    n = maps.shape[0]
    label = partition_label(maps)
    if label is not None:
        return Layout.PARTITION, [(label, n)]
    label = partition_label(maps[:-1]) if n >= 2 else None
    if label is not None:
        extra = maps[-1]
        residual = extra ^ instance_edges(label)
        # keep the XOR only when it is sparser than the plane itself (it is for edge maps)
        if np.count_nonzero(residual) < np.count_nonzero(extra):
            return Layout.PARTITION_EDGES, [(label, n - 1), (residual, 2)]
        return Layout.PARTITION_EXTRA, [(label, n - 1), (extra, 2)]
    return Layout.PLANES, [(maps[i], 2) for i in range(n)]


def component_specs(layout: Layout, n_maps: int) -> list[int]:
    """Alphabets of the components a decoder must read for ``layout`` and ``n_maps``."""
    if layout == Layout.PARTITION:
        return [n_maps]
    if layout in (Layout.PARTITION_EXTRA, Layout.PARTITION_EDGES):
        if n_maps < 2:
            raise PayloadError(f"payload layout {layout.name} needs at least 2 maps, the header says {n_maps}")
        return [n_maps - 1, 2]
    return [2] * n_maps


def merge_maps(layout: Layout, components: list[np.ndarray], n_maps: int) -> np.ndarray:
    """Inverse of :func:`split_maps`: components -> ``(N, H, W)`` uint8 maps."""
    if layout == Layout.PLANES:
        return np.stack(components).astype(np.uint8)
    label = components[0]
    k = n_maps if layout == Layout.PARTITION else n_maps - 1
    if label.size and int(label.max()) >= k:
        raise PayloadError(f"corrupt payload: label index {int(label.max())} for {k} class maps")
    height, width = label.shape
    out = np.zeros((n_maps, height, width), dtype=np.uint8)
    np.put_along_axis(out[:k], label[None].astype(np.intp), 1, axis=0)
    if layout == Layout.PARTITION_EXTRA:
        out[-1] = components[1]
    elif layout == Layout.PARTITION_EDGES:
        out[-1] = components[1] ^ instance_edges(label)
    return out


def parse_layout_byte(payload: bytes) -> Layout:
    """Read the first payload byte of the entropy codecs (layout, format version 0)."""
    if len(payload) == 0:
        raise PayloadError("payload is empty")
    b = payload[0]
    if b >> 2:
        raise PayloadError(f"corrupt payload: unknown format byte {b:#04x}")
    return Layout(b & 3)
