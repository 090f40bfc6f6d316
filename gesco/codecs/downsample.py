"""Lossy spatial downsampling of the maps by a factor ``k`` (fewer bits AND fewer channel uses).

The sender replaces each ``k x k`` block of the maps by one value, codes the small
maps ``(N, ceil(H/k), ceil(W/k))`` with a lossless inner codec, and the channel sends
those small maps: ``N * ceil(H/k) * ceil(W/k)`` real symbols instead of ``N * H * W``.
The receiver brings the received (noisy, float) symbols back to ``H x W``
(:meth:`DownsampleCodec.upsample`) before FDS and the diffusion model.

Block rules (which value a block gets):

* class maps that partition the image (the usual case): the block's **majority class**
  (ties: the class listed first). The small maps stay one-hot, i.e. a valid layout for
  a model trained on one-hot maps, and the majority is the constant that gets the most
  pixels of the block right. Classes narrower than about ``k / 2`` pixels (poles) can
  vanish; ``docs/bit_budget.md`` measures how much of each class survives.
* the extra plane after a partition (the instance-edge map): the edge map of the
  downsampled layout, i.e. the boundaries of the small label map, plus (**any** rule,
  max-pooling) the edges no label boundary explains (touching instances of one class).
  Edges are one-pixel lines that a majority rule would erase; this keeps every
  boundary, and keeps the small edge map consistent with the small label map, so the
  inner codec codes it almost for free. An extra plane that is not edge-like gets "any".
* maps that are not a partition: per-plane majority (a block is 1 when at least half of
  its pixels are).

Upsampling: ``"nearest"`` (default) repeats each symbol over its block; on a clean
channel the maps come back binary and one-hot, exactly what the model was trained on.
``"bilinear"`` interpolates between block centres (smoother boundaries after an argmax,
soft values at boundaries); see ``docs/bit_budget.md`` for the accuracy of both.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gesco.codecs.base import EncodedMaps, check_maps, check_shape, partition_label
from gesco.codecs.lossless import DEFAULT_LOSSLESS, LOSSLESS_CODECS, LosslessCodec
from gesco.errors import ShapeError, UnknownCodecError
from gesco.semantics.layout import instance_edges

UPSAMPLE_MODES = ("nearest", "bilinear")
MAX_FACTOR = 64


def _block_sums(maps: np.ndarray, k: int) -> np.ndarray:
    """``(N, H, W)`` {0, 1} -> ``(N, ceil(H/k), ceil(W/k))`` uint16 sums over ``k x k`` blocks (zero padded)."""
    n, h, w = maps.shape
    hs, ws = -(-h // k), -(-w // k)
    if (hs * k, ws * k) != (h, w):
        padded = np.zeros((n, hs * k, ws * k), dtype=maps.dtype)
        padded[:, :h, :w] = maps
        maps = padded
    # strided adds (k + k passes) are much faster than a reshape + sum over two axes
    cols = maps[:, :, 0::k].astype(np.uint16)
    for j in range(1, k):
        cols += maps[:, :, j::k]
    out = cols[:, 0::k].copy()
    for j in range(1, k):
        out += cols[:, j::k]
    return out


def _first_argmax(counts: np.ndarray) -> np.ndarray:
    """``argmax`` over the first axis (first maximum wins), one pass per plane."""
    best = counts[0].copy()
    winner = np.zeros(best.shape, dtype=np.intp)
    for i in range(1, counts.shape[0]):
        better = counts[i] > best
        winner[better] = i
        np.maximum(best, counts[i], out=best)
    return winner


def downsample_maps(maps: np.ndarray, factor: int) -> np.ndarray:
    """Apply the block rules of the module docstring.

    Args:
        maps: ``(N, H, W)`` uint8 in {0, 1}.
        factor: block side ``k >= 1``.
    Returns:
        ``(N, ceil(H/k), ceil(W/k))`` uint8 in {0, 1}.
    """
    maps = check_maps(maps)
    if factor == 1:
        return maps.copy()
    n, h, w = maps.shape
    if partition_label(maps) is not None:
        k_classes = n
    elif n >= 2 and (label := partition_label(maps[:-1])) is not None:
        k_classes = n - 1
    else:
        sums = _block_sums(maps, factor).astype(np.int32)
        valid = _block_sums(np.ones((1, h, w), dtype=np.uint8), factor)[0].astype(np.int32)
        return (2 * sums >= valid).astype(np.uint8)
    sums = _block_sums(maps[:k_classes], factor)
    winner = _first_argmax(sums)  # ties go to the class listed first
    out = np.zeros((n,) + sums.shape[1:], dtype=np.uint8)
    np.put_along_axis(out[:k_classes], winner[None], 1, axis=0)
    if k_classes < n:
        out[-1] = _downsample_extra(label, maps[-1], winner, factor)
    return out


def _downsample_extra(label: np.ndarray, extra: np.ndarray, small_label: np.ndarray, factor: int) -> np.ndarray:
    """The extra plane after a partition, ``(ceil(H/k), ceil(W/k))`` uint8.

    An edge map (mostly the label map's own boundaries, see
    :func:`gesco.codecs.base.split_maps`) becomes the edge map of the *downsampled*
    layout: the boundaries of the small label map plus, with the "any" rule, the edges
    that no label boundary explains (between touching instances of one class). Any other
    extra plane gets the "any" rule.

    Args:
        label: ``(H, W)`` label-index map of the partition; extra: ``(H, W)`` the extra plane;
        small_label: ``(h, w)`` block-majority label map; factor: ``k``.
    """
    label_edges = instance_edges(label)
    if np.count_nonzero(extra ^ label_edges) < np.count_nonzero(extra):
        inner = extra & (1 - label_edges)  # edges inside one class region
        return instance_edges(small_label) | (_block_sums(inner[None], factor)[0] > 0).astype(np.uint8)
    return (_block_sums(extra[None], factor)[0] > 0).astype(np.uint8)


class DownsampleCodec:
    """Block downsampling by ``factor``, then a lossless ``inner`` codec on the small maps.

    Args:
        factor: block side ``k`` (1..64); ``k = 1`` is the inner codec alone.
        inner: name of a lossless codec (``DEFAULT_LOSSLESS``, ``"context"``, by default).
        upsample: ``"nearest"`` (default) or ``"bilinear"``, see the module docstring.
    """

    name = "downsample"
    lossless = False

    def __init__(self, factor: int = 2, inner: str = DEFAULT_LOSSLESS, upsample: str = "nearest") -> None:
        if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or not 1 <= factor <= MAX_FACTOR:
            raise UnknownCodecError(f"downsample factor must be an integer in [1, {MAX_FACTOR}], got {factor!r}")
        if inner not in LOSSLESS_CODECS:
            raise UnknownCodecError(f"unknown inner codec {inner!r} for downsample; lossless codecs: {sorted(LOSSLESS_CODECS)}")
        if upsample not in UPSAMPLE_MODES:
            raise UnknownCodecError(f"unknown upsample mode {upsample!r}; known: {list(UPSAMPLE_MODES)}")
        self.factor = int(factor)
        self.inner_name = inner
        self.upsample_mode = upsample
        self._inner: LosslessCodec = LOSSLESS_CODECS[inner]()

    def params(self) -> dict[str, int | str]:
        """The non-default parameters (what the frame header carries)."""
        p: dict[str, int | str] = {"factor": self.factor}
        if self.inner_name != DEFAULT_LOSSLESS:
            p["inner"] = self.inner_name
        if self.upsample_mode != "nearest":
            p["upsample"] = self.upsample_mode
        return p

    def channel_shape(self, n_maps: int, height: int, width: int) -> tuple[int, int, int]:
        check_shape(n_maps, height, width)
        return (n_maps, -(-height // self.factor), -(-width // self.factor))

    def encode(self, maps: np.ndarray) -> EncodedMaps:
        maps = check_maps(maps)
        n, h, w = maps.shape
        payload = self._inner.encode(downsample_maps(maps, self.factor)).payload
        return EncodedMaps(payload, self.name, self.params(), n, h, w)

    def channel_symbols(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        """The small maps ``(N, ceil(H/k), ceil(W/k))`` uint8 the channel sends."""
        return self._inner.decode(payload, *self.channel_shape(n_maps, height, width))

    def decode(self, payload: bytes, n_maps: int, height: int, width: int) -> np.ndarray:
        """The sender-side reconstruction: small maps upsampled by block repetition, ``(N, H, W)`` uint8."""
        small = self.channel_symbols(payload, n_maps, height, width)
        return _nearest(small, height, width, self.factor)

    def upsample(self, received, height: int, width: int):
        """Received symbols ``(..., N, h, w)`` (numpy or torch, float or integer) -> ``(..., N, H, W)``.

        ``h, w`` must be ``ceil(H/k), ceil(W/k)``. Nearest keeps the dtype; bilinear returns
        float (float32 for integer input) and is computed with torch.
        """
        expected = (-(-height // self.factor), -(-width // self.factor))
        if tuple(received.shape[-2:]) != expected or received.ndim < 2:
            raise ShapeError(
                f"received maps are {tuple(received.shape[-2:])}, factor {self.factor} at {height}x{width} expects {expected}"
            )
        if self.upsample_mode == "nearest":
            return _nearest(received, height, width, self.factor)
        return _bilinear(received, height, width, self.factor)

    def __repr__(self) -> str:
        return f"DownsampleCodec(factor={self.factor}, inner={self.inner_name!r}, upsample={self.upsample_mode!r})"


def _nearest(x, height: int, width: int, k: int):
    """Repeat each symbol over its ``k x k`` block, cropped to ``height x width``."""
    if isinstance(x, torch.Tensor):
        up = x.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1)
    else:
        up = np.asarray(x).repeat(k, axis=-2).repeat(k, axis=-1)
    return up[..., :height, :width]


def _bilinear(x, height: int, width: int, k: int):
    """Bilinear interpolation between block centres (align_corners=False), cropped."""
    is_numpy = not isinstance(x, torch.Tensor)
    t = torch.from_numpy(np.asarray(x)) if is_numpy else x
    out_dtype = t.dtype if torch.is_floating_point(t) else torch.float32
    lead = t.shape[:-2]
    flat = t.float().reshape(1, -1, *t.shape[-2:])
    up = F.interpolate(flat, scale_factor=k, mode="bilinear", align_corners=False)[..., :height, :width]
    up = up.reshape(*lead, height, width).to(out_dtype)
    return up.numpy() if is_numpy else up
