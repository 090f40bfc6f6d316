"""Lossless coding of a label map row by row, relative to the row above.

A label map of a street scene is a few dozen regions with smooth boundaries, so each
row is a short list of *runs* (start position, label), and almost every boundary of a
row continues a boundary of the row above, shifted by a pixel or two. This is the idea
of the two-dimensional "READ" code of fax machines (ITU-T T.4/T.6), generalised here
from black/white to many labels and driven by an adaptive binary arithmetic coder
(:mod:`gesco.codecs.rangecoder`).

For row ``y`` with transitions ``t_1 < ... < t_m`` (``row[t] != row[t - 1]``) and run
labels ``v_0 .. v_m``, and the transitions ``R`` of row ``y - 1`` (empty for row 0):

1. code ``v_0`` (predicted: the label above, ``L[y - 1, 0]``);
2. for each transition ``t`` in order, with ``r`` the next unused transition of ``R``
   after the previous one (``p``), code one *mode* symbol:

   * ``V(d)``, ``|d| <= 3``: ``t = r + d`` (the boundary above continues, shifted by d);
   * ``SKIP``: the boundary above at ``r`` ends here; move ``r`` to the next one;
   * ``HORIZ``: a new boundary, ``t - p`` coded explicitly (Elias-gamma-like);
   * ``END``: no more transitions in this row;

   then the label of the new run (predicted: the label right of the boundary above,
   ``L[y - 1, r]`` for ``V``, ``L[y - 1, t]`` for ``HORIZ``). With two labels (a binary
   plane) the new label is implied and costs nothing.

Each mode symbol is coded in the context of the mode that coded the reference boundary
``r`` in the row above (how that boundary moved: a slanted boundary keeps its shift);
once the row above has no boundary left, only END or HORIZ remain, coded as one bit in
the context of the previous mode of the row. Each label is coded with a "same as
predicted" flag, and only when the prediction fails with a binary tree over the label
alphabet. A boundary that continues straight down therefore costs a
small fraction of a bit. Encoder and decoder call the same :class:`_Models` in the
same order; the decoder checks every decoded value (positions inside the row, labels
inside the alphabet) and raises :class:`~gesco.errors.PayloadError` on anything the
encoder cannot have produced.
"""

from __future__ import annotations

import numpy as np

from gesco.codecs.rangecoder import RangeDecoder, RangeEncoder, new_model
from gesco.errors import PayloadError

# Mode symbols. V(d) for d in (0, +1, -1, +2, -2, +3, -3) are 0..6.
_V_OFFSETS = (0, 1, -1, 2, -2, 3, -3)
_V_SYMBOL = {d: s for s, d in enumerate(_V_OFFSETS)}
MAX_SHIFT = 3
SKIP, HORIZ, END = 7, 8, 9
_START = 10  # "previous mode" at the start of a row
_MODE_BITS = 4  # mode symbols 0..9 fit a 4-bit tree
#: at most this many SKIPs before a V mode; farther boundaries are coded with HORIZ
MAX_SKIPS = 2
# HORIZ distances: bit length (1..16) with a 4-bit tree, then the bits below the leading
# one; rows are at most 32767 pixels (gesco.codecs.base.MAX_SIDE), so 15 bits suffice.


def alphabet_bits(alphabet: int) -> int:
    """Bits of the binary tree that codes a label in ``[0, alphabet)``."""
    return max(1, (alphabet - 1).bit_length())


class _Models:
    """The adaptive probabilities of one coded label map (encoder and decoder alike)."""

    def __init__(self, alphabet: int) -> None:
        self.alphabet = alphabet
        self.label_bits = alphabet_bits(alphabet)
        # mode tree, one per context "mode that coded the reference boundary above"
        self.mode = new_model(11 << _MODE_BITS)
        # END (1) or HORIZ (0) once no reference boundary is left, per previous mode of the row
        self.mode_noref = new_model(11)
        self.dist_len = new_model(1 << 4)
        self.dist_bits = new_model(17 << 4)  # context: (bit length, bit index)
        self.label_hit = new_model(3)  # context: 0 row start, 1 after V, 2 after HORIZ
        self.label_tree = new_model(1 << self.label_bits)


def _transitions(row: np.ndarray) -> list[int]:
    """Positions ``t >= 1`` where ``row[t] != row[t - 1]``."""
    return (np.flatnonzero(row[1:] != row[:-1]) + 1).tolist()


def encode_label_map(enc: RangeEncoder, label: np.ndarray, alphabet: int) -> None:
    """Append a label map to ``enc``.

    Args:
        enc: the range encoder (shared with other parts of the payload).
        label: ``(H, W)`` integer map with values in ``[0, alphabet)``.
        alphabet: number of labels (2 for a binary plane).
    """
    models = _Models(alphabet)
    height, width = label.shape
    above = [0] * width
    refs: list[int] = []  # transitions of the row above ...
    ref_modes: list[int] = []  # ... and the mode that coded each of them
    for y in range(height):
        row = label[y].tolist()
        trans = _transitions(label[y])
        modes: list[int] = []
        cur = row[0]
        _encode_label(enc, models, 0, cur, above[0], None)
        prev_mode, p, i = _START, 0, 0
        for t in trans:
            # the first reference boundary within MAX_SHIFT of t, at most MAX_SKIPS ahead
            j = i
            while j < len(refs) and refs[j] < t - MAX_SHIFT:
                j += 1
            if j < len(refs) and refs[j] <= t + MAX_SHIFT and j - i <= MAX_SKIPS:
                for k in range(i, j):
                    enc.tree(models.mode, _mode_ctx(ref_modes[k]), _MODE_BITS, SKIP)
                    prev_mode = SKIP
                mode = _V_SYMBOL[t - refs[j]]
                enc.tree(models.mode, _mode_ctx(ref_modes[j]), _MODE_BITS, mode)
                pred = above[refs[j]]
                i = j + 1
                hit_ctx = 1
            else:
                if i < len(refs):
                    enc.tree(models.mode, _mode_ctx(ref_modes[i]), _MODE_BITS, HORIZ)
                else:
                    enc.bit(models.mode_noref, prev_mode, 0)
                _encode_distance(enc, models, t - p)
                mode = HORIZ
                pred = above[t]
                hit_ctx = 2
            while i < len(refs) and refs[i] <= t:
                i += 1
            new = row[t]
            _encode_label(enc, models, hit_ctx, new, pred, cur)
            modes.append(mode)
            cur, p, prev_mode = new, t, mode
        if i < len(refs):
            enc.tree(models.mode, _mode_ctx(ref_modes[i]), _MODE_BITS, END)
        else:
            enc.bit(models.mode_noref, prev_mode, 1)
        above, refs, ref_modes = row, trans, modes


def decode_label_map(dec: RangeDecoder, height: int, width: int, alphabet: int) -> np.ndarray:
    """Read a label map written by :func:`encode_label_map`.

    Returns:
        ``(height, width)`` uint8 (alphabet <= 256) or int32 map.
    Raises:
        PayloadError: when the stream holds something the encoder cannot have written.
    """
    models = _Models(alphabet)
    dtype = np.uint8 if alphabet <= 256 else np.int32
    out = np.empty((height, width), dtype=dtype)
    above = [0] * width
    refs: list[int] = []
    ref_modes: list[int] = []
    for y in range(height):
        cur = _decode_label(dec, models, 0, above[0], None)
        starts, labels, modes = [0], [cur], []
        prev_mode, p, i = _START, 0, 0
        while True:
            if i < len(refs):
                mode = dec.tree(models.mode, _mode_ctx(ref_modes[i]), _MODE_BITS)
            else:
                mode = END if dec.bit(models.mode_noref, prev_mode) else HORIZ
            if mode == END:
                break
            if mode == SKIP:
                i += 1
                prev_mode = SKIP
                continue
            if mode == HORIZ:
                t = p + _decode_distance(dec, models)
                pred = above[t] if t < width else 0
                hit_ctx = 2
            elif mode < len(_V_OFFSETS):
                t = refs[i] + _V_OFFSETS[mode]
                pred = above[refs[i]]
                i += 1
                hit_ctx = 1
            else:
                raise PayloadError(f"corrupt payload: unknown mode symbol {mode} in row {y}")
            if not p < t < width:
                raise PayloadError(f"corrupt payload: boundary at {t} in row {y} (previous {p}, width {width})")
            while i < len(refs) and refs[i] <= t:
                i += 1
            cur = _decode_label(dec, models, hit_ctx, pred, cur)
            starts.append(t)
            labels.append(cur)
            modes.append(mode)
            p, prev_mode = t, mode
        lengths = np.diff(np.asarray(starts + [width]))
        out[y] = np.repeat(np.asarray(labels, dtype=dtype), lengths)
        above, refs, ref_modes = out[y].tolist(), starts[1:], modes
    return out


def _mode_ctx(ref_mode: int) -> int:
    """Offset in ``_Models.mode`` of the tree for "the boundary above was coded with ``ref_mode``"."""
    return ref_mode << _MODE_BITS


def _encode_label(enc: RangeEncoder, models: _Models, ctx: int, label: int, pred: int, left: int | None) -> None:
    """Code a run label: implied for a binary alphabet after a boundary, else flag + tree."""
    if left is not None and models.alphabet == 2:
        return  # the only label that differs from ``left``
    hit = label == pred
    enc.bit(models.label_hit, ctx, 0 if hit else 1)
    if not hit:
        enc.tree(models.label_tree, 0, models.label_bits, label)


def _decode_label(dec: RangeDecoder, models: _Models, ctx: int, pred: int, left: int | None) -> int:
    if left is not None and models.alphabet == 2:
        return 1 - left
    if dec.bit(models.label_hit, ctx) == 0:
        label = pred
    else:
        label = dec.tree(models.label_tree, 0, models.label_bits)
    if label >= models.alphabet or label == left:
        raise PayloadError(f"corrupt payload: run label {label} (alphabet {models.alphabet}, left label {left})")
    return label


def _encode_distance(enc: RangeEncoder, models: _Models, n: int) -> None:
    """Code ``n >= 1``: its bit length with a tree, then the bits below the leading one."""
    nb = n.bit_length()
    enc.tree(models.dist_len, 0, 4, nb - 1)
    for k in range(nb - 2, -1, -1):
        enc.bit(models.dist_bits, (nb << 4) + k, (n >> k) & 1)


def _decode_distance(dec: RangeDecoder, models: _Models) -> int:
    nb = dec.tree(models.dist_len, 0, 4) + 1
    n = 1
    for k in range(nb - 2, -1, -1):
        n = (n << 1) | dec.bit(models.dist_bits, (nb << 4) + k)
    return n
