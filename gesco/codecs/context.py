"""Context-adaptive arithmetic coding of a label map, row-parallel, with ``constriction``.

Each pixel of a label map ``L`` (``(H, W)``, values ``0 .. K-1``) is predicted by the
pixel above; what is coded is *where the prediction fails* and, there, *which label* it
is. The entropy coder is the range coder of the ``constriction`` package
(:class:`constriction.stream.queue.RangeEncoder`); the probabilities it is given come from
the context model below, which is ours. Every decision is coded with the adaptive
probability of its context, so a boundary that continues straight down costs a small
fraction of a bit.

**Row-parallel context model.** All contexts of row ``y`` are built from the rows above
and from decisions of row ``y`` decoded in an earlier *phase*, never from symbols of the
same phase; so the decoder reads a whole phase of a row with one call of the coder
(numpy-vectorised, no Python loop over pixels), and the encoder codes the whole map with
two calls. Probabilities adapt once per row: ``p(s | ctx) = (n_s + a_s) / sum_t (n_t + a_t)``
with ``n`` the counts of the rows already coded in that context and ``a`` a prior (fitted
on training-split scenes, :data:`PRIORS_FILE`; ``PRIOR`` where there is none).

For row ``y >= 1`` with ``A = L[y - 1]`` (the row above) and the *change flags*
``c[y, x] = [L[y, x] != A[x]]``:

0. **Repeated row**: one bit "``c[y] == 0`` everywhere" (context: the same bit of row
   ``y - 1``); when it is set nothing else of the row is coded (87 % of the edge map's rows
   and 20 % of the label map's at 64x128).
1. **Change flags**, in three phases over the columns: phase 0 codes ``x % 4 == 0``,
   phase 1 ``x % 4 == 2``, phase 2 the odd columns. The context of ``c[y, x]`` is the
   phase (a table each) and 11 bits from the rows above (:func:`base_context`):

   * ``A[x] != A[x - 1]``, ``A[x] != A[x + 1]`` (a boundary next to ``x`` in the row above),
     ``A[x - 1] != A[x - 2]``, ``A[x + 1] != A[x + 2]`` (one pixel farther),
   * ``c[y - 1, x - 1]``, ``c[y - 1, x]``, ``c[y - 1, x + 1]`` (where the row above changed:
     a boundary that moves keeps moving), ``c[y - 1, x -+ 2]``, ``c[y - 1, x -+ 3]``,
     ``c[y - 1, x -+ 4]`` (each pair OR-ed into one bit: a slanted boundary),
   * ``c[y - 2, x - 1] or c[y - 2, x] or c[y - 2, x + 1]`` (a boundary that moves every
     other row),

   plus the flags of row ``y`` decoded in the earlier phases: at ``x - 2`` and ``x + 2``
   (phase 1), at ``x - 1``, ``x + 1``, ``x - 3``, ``x + 3`` (phase 2). Every reference
   outside the image reads as "no boundary" / 0. These choices were made by the bits they
   save on training-split scenes (64x128 and 256x512), one feature at a time.
2. **New labels** (alphabets ``K > 2``; with ``K == 2`` the label of a changed pixel is
   ``1 - A[x]``), for the changed pixels of the row: a symbol ``s`` in
   ``{0: same as the pixel on the left, 1: same as A[x + 1], 2: same as A[x - 1],
   3: explicit}`` (the encoder takes the first that holds), in the context
   ``(c[y, x - 1], A[x + 1] != A[x], A[x - 1] != A[x])``; then, for ``s == 3``, the label
   itself in the context of the label above, ``A[x]``.

Row 0 has no row above: its flags are ``c[0, x] = [L[0, x] != L[0, x - 1]]``, coded as
their number ``m`` (uniform over ``0 .. W - 1``) and then each with probability
``m / (W - 1)``; the label of pixel 0 and of every flagged pixel is explicit (context
"row 0").

**Streams.** The flags go to one range-coded stream and the label symbols to a second
one (so the encoder needs one call per stream); the payload holds the number of 32-bit
words of the first stream, then both. The decoder resolves "same as the left pixel" with
a forward fill along the row and raises :class:`~gesco.errors.PayloadError` on symbols
the encoder cannot write (a reference outside the row, a symbol outside its alphabet, a
row-0 boundary count that does not match its flags); at the end it codes the decoded
symbols again and refuses the payload unless that gives its bytes back
(:meth:`StreamReader.check_exact`: truncated and over-long payloads).
"""

from __future__ import annotations

import functools
from pathlib import Path

import constriction
import numpy as np

from gesco.errors import PayloadError

#: pseudo-count of a context without a fitted prior (Krichevsky-Trofimov uses 0.5)
PRIOR = 0.4
#: columns of each flag phase: (offset, step)
PHASES: tuple[tuple[int, int], ...] = ((0, 4), (2, 4), (1, 2))
#: number of contexts of each flag phase (2 ** context bits)
BASE_BITS = 11  # bits of base_context
FLAG_CONTEXTS: tuple[int, ...] = (1 << BASE_BITS, 1 << (BASE_BITS + 2), 1 << (BASE_BITS + 4))
HOW_CONTEXTS, HOW_SYMBOLS = 8, 4
SAME_LEFT, SAME_RIGHT_ABOVE, SAME_LEFT_ABOVE, EXPLICIT = 0, 1, 2, 3
#: fitted priors of the flag and "how" tables (``scripts/fit_context_priors.py``)
PRIORS_FILE = Path(__file__).resolve().parents[1] / "assets" / "context_priors.npz"
#: component kinds with their own priors: label maps (K > 2) and binary planes
KINDS = ("labels", "binary")


def kind_of(alphabet: int) -> str:
    """Which prior set a component of this alphabet uses."""
    return "labels" if alphabet > 2 else "binary"


Priors = dict[str, dict[str, np.ndarray]]
_TABLE_SHAPES = {f"flags{i}": (n, 2) for i, n in enumerate(FLAG_CONTEXTS)} | {
    "how": (HOW_CONTEXTS, HOW_SYMBOLS),
    "rows": (2, 2),
}


def flat_priors() -> Priors:
    """``PRIOR`` in every slot: what the tables start from without fitted priors."""
    return {kind: {name: np.full(shape, np.float32(PRIOR), dtype=np.float64) for name, shape in _TABLE_SHAPES.items()}
            for kind in KINDS}


@functools.lru_cache(maxsize=1)
def load_priors() -> Priors:
    """The fitted prior pseudo-counts, ``{kind: {"flags0".."flags2", "how": (n_ctx, n_sym)}}``.

    Encoder and decoder must use the same priors: they are part of the format.
    Raises:
        FileNotFoundError, ValueError: the asset is missing or malformed (no silent fallback).
    """
    with np.load(PRIORS_FILE, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    out = {}
    for kind in KINDS:
        tables = {}
        for name, shape in _TABLE_SHAPES.items():
            arr = np.asarray(arrays.get(f"{kind}.{name}", np.zeros(0)), dtype=np.float64)
            if arr.shape != shape or not np.all(arr > 0) or not np.array_equal(arr, arr.astype(np.float32)):
                raise ValueError(f"{PRIORS_FILE}: {kind}.{name} must be {shape} positive float32 numbers")
            tables[name] = arr
        out[kind] = tables
    return out


class _Table:
    """Adaptive distributions over ``n_sym`` symbols, one per context: prior + integer counts.

    Two views, each allocated on first use (the flag tables are large): ``counts`` (integer,
    what the encoder and the how / label lookups use; :meth:`update`) and ``n = prior +
    counts`` as float (the decoder's binary lookups; :meth:`observe`). A table is driven
    through one of them. ``n`` is exactly ``counts + prior`` as the encoder computes it because
    the priors are float32 values (24-bit mantissas: adding integer counts in float64 never
    rounds).
    """

    def __init__(self, prior: np.ndarray) -> None:
        self.prior = prior
        self._counts: np.ndarray | None = None
        self._n: np.ndarray | None = None

    @property
    def counts(self) -> np.ndarray:
        if self._counts is None:
            self._counts = np.zeros(self.prior.shape, dtype=np.int64)
        return self._counts

    @counts.setter
    def counts(self, value: np.ndarray) -> None:
        self._counts = value

    @property
    def n(self) -> np.ndarray:
        if self._n is None:
            self._n = self.prior.copy()
        return self._n

    def probs(self, ctx: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
        """``(len(ctx), n_sym)`` float64 probabilities (``counts``: per-symbol counts to use)."""
        n = (self.counts[ctx] if counts is None else counts) + self.prior[ctx]
        return n / n.sum(axis=1, keepdims=True)

    def p1(self, ctx: np.ndarray) -> np.ndarray:
        """``p(1 | ctx)`` of a binary table driven by :meth:`observe`."""
        return _p1(self.n[ctx])

    def update(self, ctx: np.ndarray, symbols: np.ndarray) -> None:
        """Count coded symbols in ``counts``."""
        np.add.at(self.counts, (ctx, symbols), 1)

    def observe(self, ctx: np.ndarray, symbols: np.ndarray) -> None:
        """Count decoded symbols in ``n`` (the decoder's binary tables read nothing else)."""
        np.add.at(self.n, (ctx, symbols), 1.0)


def _p1(n: np.ndarray) -> np.ndarray:
    """``p(1) = n1 / (n0 + n1)`` of ``(..., 2)`` pseudo-counts (one formula for encoder and decoder)."""
    return n[..., 1] / (n[..., 0] + n[..., 1])


class _Models:
    """Every adaptive table of one coded component (encoder and decoder alike)."""

    def __init__(self, alphabet: int, priors: Priors | None = None) -> None:
        priors = (priors or load_priors())[kind_of(alphabet)]
        self.alphabet = alphabet
        self.flags = [_Table(priors[f"flags{i}"]) for i in range(len(PHASES))]
        self.how = _Table(priors["how"])
        self.rows = _Table(priors["rows"])
        # explicit labels in the context of the label above (context ``alphabet``: row 0)
        self.label = _Table(np.full((alphabet + 1, alphabet), np.float32(PRIOR), dtype=np.float64))


# ------------------------------------------------------------------ contexts (last axis = x)


def _shift(a: np.ndarray, d: int) -> np.ndarray:
    """``a[..., x + d]``, 0 outside the row."""
    out = np.zeros_like(a)
    if d > 0:
        out[..., :-d] = a[..., d:]
    else:
        out[..., -d:] = a[..., :d]
    return out


#: the farthest neighbour a context reads, in pixels
PAD = 4


def pad_rows(a: np.ndarray, edge: bool) -> np.ndarray:
    """``a`` with ``PAD`` columns added on both sides of its last axis.

    ``edge``: repeat the edge values (label rows: no boundary outside the image), else zeros
    (flag rows: no change outside the image).
    """
    widths = [(0, 0)] * (a.ndim - 1) + [(PAD, PAD)]
    return np.pad(a, widths, mode="edge") if edge else np.pad(a, widths)


def _at(padded: np.ndarray, d: int) -> np.ndarray:
    """``a[..., x + d]`` for every column ``x`` of the unpadded row (a view)."""
    width = padded.shape[-1] - 2 * PAD
    return padded[..., PAD + d : PAD + d + width]


def _window_lut(n: int, feature_bits) -> np.ndarray:
    """Lookup table: every pattern of ``n`` binary window values -> its context bits."""
    codes = np.arange(1 << n)
    window = (codes[:, None] >> np.arange(n)) & 1  # window[code, k]
    return feature_bits(window).astype(np.int64)


# boundaries of the row above around x: w = (d[x-2..x-1], d[x-1..x], d[x..x+1], d[x+1..x+2])
_BOUNDARY_LUT = _window_lut(4, lambda w: w[:, 1] | w[:, 2] << 1 | w[:, 0] << 5 | w[:, 3] << 6)
# change flags of row y - 1 at x - 4 .. x + 4 (k = offset + 4)
_FLAGS1_LUT = _window_lut(9, lambda w: w[:, 4] << 2 | w[:, 3] << 3 | w[:, 5] << 4 | (w[:, 2] | w[:, 6]) << 8
                          | (w[:, 1] | w[:, 7]) << 9 | (w[:, 0] | w[:, 8]) << 10)
_POW = [1 << np.arange(n) for n in range(10)]


def _window_codes(a: np.ndarray, first: int, n: int, width: int) -> np.ndarray:
    """``sum_k a[..., first + x + k] << k`` for ``k < n`` and every column ``x < width``.

    One row (the decoder): a single ``np.convolve``; a block of rows (the encoder): ``n``
    shifted sums over all rows at once.
    """
    if a.ndim == 1:
        return np.convolve(a, _POW[n][::-1], "valid")[first : first + width]
    out = np.zeros((*a.shape[:-1], width), dtype=np.int64)
    for k in range(n):
        out += a[..., first + k : first + k + width] << k
    return out


def base_context(above: np.ndarray, flags1: np.ndarray, flags2: np.ndarray) -> np.ndarray:
    """Bits 0-10 of every flag context, from the two rows above (see the module docstring).

    Bit 0 ``A[x] != A[x-1]``, 1 ``A[x] != A[x+1]``, 2-4 ``c[y-1]`` at ``x, x-1, x+1``,
    5 ``A[x-1] != A[x-2]``, 6 ``A[x+1] != A[x+2]``, 7 ``c[y-2]`` anywhere in ``x-1..x+1``,
    8-10 ``c[y-1]`` at ``x -+ 2``, ``x -+ 3``, ``x -+ 4`` (each pair OR-ed); computed by
    window lookup tables.

    Args:
        above: the label row(s) above, padded by :func:`pad_rows` (``edge=True``).
        flags1, flags2: the change flags of rows ``y - 1`` and ``y - 2`` (int64), padded with zeros.
    Returns:
        int64 contexts of the unpadded columns.
    """
    width = above.shape[-1] - 2 * PAD
    boundary = (above[..., 1:] != above[..., :-1]).astype(np.int64)  # [j]: between padded j and j + 1
    return (
        _BOUNDARY_LUT[_window_codes(boundary, PAD - 2, 4, width)]
        | _FLAGS1_LUT[_window_codes(flags1, PAD - 4, 9, width)]
        | (_window_codes(flags2, PAD - 1, 3, width) > 0).astype(np.int64) << 7
    )


def flag_context(phase: int, base: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """The full context of every column for ``phase`` (select the phase's columns after).

    ``flags``: the row's flags, read only in the columns of earlier phases.
    """
    if phase == 0:
        return base
    if phase == 1:  # x % 4 == 2: x - 2 and x + 2 were coded in phase 0
        return base | _shift(flags, -2) << BASE_BITS | _shift(flags, 2) << (BASE_BITS + 1)
    # odd x: every even column is known
    b = BASE_BITS
    return base | _shift(flags, -1) << b | _shift(flags, 1) << (b + 1) | _shift(flags, -3) << (b + 2) | _shift(flags, 3) << (b + 3)


def how_context(left_flag: np.ndarray, above: np.ndarray, above_left: np.ndarray, above_right: np.ndarray) -> np.ndarray:
    """Context of the "how" symbol of changed pixels (all arguments at those pixels)."""
    return left_flag | (above_right != above).astype(np.int64) << 1 | (above_left != above).astype(np.int64) << 2


# ------------------------------------------------------------------ encoder


class StreamPair:
    """The symbols and probabilities of the two streams, collected in coding order."""

    def __init__(self, width: int) -> None:
        self.width = width  # every label-stream distribution is padded to this many symbols
        self.flag_bits: list[np.ndarray] = []
        self.flag_p1: list[np.ndarray] = []
        self.symbols: list[np.ndarray] = []  # label stream: (symbols, probabilities) pairs
        self.probs: list[np.ndarray] = []

    def add_label_symbols(self, symbols: np.ndarray, probs: np.ndarray) -> None:
        if symbols.size:
            self.symbols.append(symbols)
            self.probs.append(_padded(probs, self.width))

    def finish(self) -> bytes:
        """``varint(words of the flag stream)`` + flag stream + label stream, words little-endian."""
        flags = constriction.stream.queue.RangeEncoder()
        if self.flag_bits:
            bits = np.concatenate(self.flag_bits).astype(np.int32)
            if bits.size:
                flags.encode(bits, constriction.stream.model.Bernoulli(perfect=False), np.concatenate(self.flag_p1))
        labels = constriction.stream.queue.RangeEncoder()
        if self.symbols:
            probs = np.concatenate(self.probs)
            labels.encode(np.concatenate(self.symbols).astype(np.int32),
                          constriction.stream.model.Categorical(perfect=False), probs)
        f, lab = flags.get_compressed(), labels.get_compressed()
        return _varint(len(f)) + f.astype("<u4").tobytes() + lab.astype("<u4").tobytes()


def _padded(probs: np.ndarray, width: int) -> np.ndarray:
    """``(n, k)`` probabilities -> ``(n, width)`` float32, zeros appended."""
    out = np.zeros((probs.shape[0], width), dtype=np.float32)
    out[:, : probs.shape[1]] = probs
    return out


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _counts_before(table: _Table, rows: np.ndarray, ctx: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """The counts each symbol is coded with when the table adapts after every row.

    Args:
        rows, ctx, symbols: 1-D int64 arrays in coding order (``rows`` non-decreasing).
    Returns:
        ``(len(symbols), n_sym)`` int64: per symbol value, ``table.counts`` plus the
        symbols of that context in earlier rows; ``table.counts`` is then advanced past
        all of them. (Sorting, not a rows x contexts table: memory stays O(len(symbols)).)
    """
    n_ctx, n_sym = table.prior.shape
    if rows.size == 0:
        return np.zeros((0, n_sym), dtype=np.int64)
    n_rows = int(rows[-1]) + 1
    key = (ctx * n_sym + symbols) * n_rows + rows  # sorted: by (context, symbol), then row
    order = np.sort(key)
    group = ((ctx * n_sym)[:, None] + np.arange(n_sym)) * n_rows  # (len, n_sym): first key of each value
    out = np.searchsorted(order, group + rows[:, None]) - np.searchsorted(order, group)
    out += table.counts[ctx]
    table.update(ctx, symbols)
    return out




def encode_component(streams: StreamPair, label: np.ndarray, alphabet: int, priors: Priors | None = None) -> _Models:
    """Append the symbols of a label map to ``streams``.

    Args:
        label: ``(H, W)`` integer map with values in ``[0, alphabet)``.
        alphabet: number of labels (2 for a binary plane).
        priors: the tables' priors (default :func:`load_priors`; fitting passes its own).
    Returns:
        The adapted tables (their ``counts`` are what was coded; used to fit priors).
    """
    models = _Models(alphabet, priors)
    label = label.astype(np.int64)
    height, width = label.shape
    _encode_first_row(streams, models, label[0])
    if height < 2:
        return models
    above, cur = label[:-1], label[1:]
    flags = (cur != above).astype(np.int64)
    flags1 = np.concatenate([np.zeros((1, width), dtype=np.int64), flags[:-1]])  # row y - 1
    flags2 = np.concatenate([np.zeros((2, width), dtype=np.int64), flags[:-2]])[: height - 1]  # row y - 2
    above_pad = pad_rows(above, edge=True)
    base = base_context(above_pad, pad_rows(flags1, edge=False), pad_rows(flags2, edge=False))
    above_left, above_right = _at(above_pad, -1), _at(above_pad, 1)
    # "row y repeats row y - 1" bits, in the context of the previous row's bit
    same = ~flags.any(axis=1)
    same_bits = same.astype(np.int64)
    same_ctx = np.concatenate([[0], same_bits[:-1]])
    rows = np.arange(height - 1)
    same_p1 = _p1(_counts_before(models.rows, rows, same_ctx, same_bits) + models.rows.prior[same_ctx])
    coded = rows[~same]  # rows whose flags are coded
    # coding order: per row its "same" bit, then (unless set) its flags phase by phase
    bits = np.zeros((height - 1, 1 + width), dtype=np.int64)
    p1 = np.zeros(bits.shape)
    bits[:, 0], p1[:, 0] = same_bits, same_p1
    if coded.size:
        phase_bits, phase_p1 = [], []
        for phase, (offset, step) in enumerate(PHASES):
            cols = np.arange(offset, width, step)
            ctx = flag_context(phase, base[coded], flags[coded])[:, cols].ravel()
            b = flags[coded][:, cols]
            table = models.flags[phase]
            before = _counts_before(table, np.repeat(np.arange(coded.size), cols.size), ctx, b.ravel())
            phase_p1.append(_p1(before + table.prior[ctx]).reshape(b.shape))
            phase_bits.append(b)
        bits[~same, 1:] = np.concatenate(phase_bits, axis=1)
        p1[~same, 1:] = np.concatenate(phase_p1, axis=1)
    keep = np.ones(bits.shape, dtype=bool)
    keep[same, 1:] = False
    streams.flag_bits.append(bits[keep])
    streams.flag_p1.append(p1[keep])
    if alphabet > 2:
        _encode_new_labels(streams, models, label, flags, above_left, above_right)
    return models


def _encode_first_row(streams: StreamPair, models: _Models, row0: np.ndarray) -> None:
    width = row0.size
    flags0 = (row0[1:] != row0[:-1]).astype(np.int64)
    if width > 1:
        count = int(flags0.sum())
        n_bits = (width - 1).bit_length()  # m in 0 .. W-1, plain binary (uniform)
        streams.flag_bits.append((count >> np.arange(n_bits - 1, -1, -1)) & 1)
        streams.flag_p1.append(np.full(n_bits, 0.5))
        streams.flag_bits.append(flags0)
        streams.flag_p1.append(np.full(width - 1, count / (width - 1)))
    explicit = np.concatenate([row0[:1], row0[1:][flags0 == 1]])
    if models.alphabet > 2:
        ctx = np.full(explicit.size, models.alphabet)
        streams.add_label_symbols(explicit, models.label.probs(ctx))
        models.label.update(ctx, explicit)
    elif models.alphabet == 2:
        streams.add_label_symbols(explicit[:1], np.full((1, 2), 0.5))  # the first label; flags flip it


def _encode_new_labels(streams: StreamPair, models: _Models, label: np.ndarray, flags: np.ndarray,
                       above_left: np.ndarray, above_right: np.ndarray) -> None:
    """The "how" symbols and explicit labels of every changed pixel, row by row."""
    width = label.shape[1]
    ys, xs = np.nonzero(flags)  # row-major: the decoding order
    if ys.size == 0:
        return
    v = label[ys + 1, xs]
    above = label[ys, xs]
    a_left, a_right = above_left[ys, xs], above_right[ys, xs]
    left = np.where(xs > 0, label[ys + 1, np.maximum(xs - 1, 0)], -1)
    how = np.full(ys.size, EXPLICIT, dtype=np.int64)
    how = np.where((a_left == v) & (xs > 0), SAME_LEFT_ABOVE, how)
    how = np.where((a_right == v) & (xs < width - 1), SAME_RIGHT_ABOVE, how)
    how = np.where(left == v, SAME_LEFT, how)
    hctx = how_context(_shift(flags, -1)[ys, xs], above, a_left, a_right)
    how_p = models.how.probs(hctx, _counts_before(models.how, ys, hctx, how))
    # explicit labels: the label table adapts after every row, few symbols: loop over their rows
    is_explicit = how == EXPLICIT
    row_ids, first = np.unique(ys, return_index=True)
    bounds = list(first) + [ys.size]
    for r in range(row_ids.size):
        part = slice(bounds[r], bounds[r + 1])
        streams.add_label_symbols(how[part], how_p[part])
        e = is_explicit[part]
        if e.any():
            ctx = above[part][e]
            streams.add_label_symbols(v[part][e], models.label.probs(ctx))
            models.label.update(ctx, v[part][e])


# ------------------------------------------------------------------ decoder


class StreamReader:
    """The two decoders of a payload written by :meth:`StreamPair.finish`.

    It records every decoded symbol with the probabilities it was decoded with, so that
    :meth:`check_exact` can code them again (two coder calls, no context modelling) and
    compare with the data: a truncated or over-long stream decodes to symbols whose coding
    is not the data.

    Raises:
        PayloadError: the word count or the word lengths do not add up.
    """

    def __init__(self, data: bytes, width: int) -> None:
        self.data = bytes(data)
        self.width = width
        self.record = StreamPair(width)
        n_flag_words, pos = _read_varint(data)
        rest = len(data) - pos
        if rest % 4 or n_flag_words * 4 > rest:
            raise PayloadError(f"corrupt payload: {rest} stream bytes do not hold {n_flag_words} flag words + whole label words")
        words = np.frombuffer(data, dtype="<u4", offset=pos).astype(np.uint32)
        self.flags = constriction.stream.queue.RangeDecoder(words[:n_flag_words])
        self.labels = constriction.stream.queue.RangeDecoder(words[n_flag_words:])
        self.bern = constriction.stream.model.Bernoulli(perfect=False)
        self.cat = constriction.stream.model.Categorical(perfect=False)

    def bits(self, p1: np.ndarray) -> np.ndarray:
        if p1.size == 0:
            return np.zeros(0, dtype=np.int64)
        out = _decoded(self.flags.decode, self.bern, p1)
        self.record.flag_bits.append(out)
        self.record.flag_p1.append(p1)
        return out

    def symbols(self, probs: np.ndarray) -> np.ndarray:
        """Decode one symbol per row of ``probs`` (padded to ``width`` like the encoder did)."""
        if probs.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        padded = _padded(probs, self.width)
        out = _decoded(self.labels.decode, self.cat, padded)
        if out.max() >= probs.shape[1]:
            raise PayloadError("corrupt payload: a label symbol outside its alphabet")
        self.record.symbols.append(out)
        self.record.probs.append(padded)
        return out

    def check_exact(self) -> None:
        """Raise :class:`PayloadError` unless coding the decoded symbols gives the data back."""
        if self.record.finish() != self.data:
            raise PayloadError(
                "context payload is truncated, over-long or corrupt: coding what it decodes to does not give it back"
            )


def _decoded(decode, model, params: np.ndarray) -> np.ndarray:
    """Call a constriction ``decode``; its refusals of invalid data become PayloadError."""
    try:
        return np.asarray(decode(model, params), dtype=np.int64)
    except (AssertionError, ValueError, RuntimeError) as exc:
        raise PayloadError(f"corrupt payload: the range decoder refused it ({exc})") from None


def label_stream_width(alphabets: list[int]) -> int:
    """Symbols of every label-stream distribution of a payload with these components."""
    return max([2] + [max(a, HOW_SYMBOLS) for a in alphabets if a > 2])


def _read_varint(data: bytes) -> tuple[int, int]:
    n = shift = 0
    for pos in range(min(len(data), 5)):
        n |= (data[pos] & 0x7F) << shift
        shift += 7
        if not data[pos] & 0x80:
            return n, pos + 1
    raise PayloadError("corrupt payload: unterminated word count")


def decode_component(reader: StreamReader, height: int, width: int, alphabet: int) -> np.ndarray:
    """Read a label map written by :func:`encode_component`.

    Returns:
        ``(height, width)`` uint8 (alphabet <= 256) or int32 map.
    Raises:
        PayloadError: the stream holds a symbol the encoder cannot have written.
    """
    models = _Models(alphabet)
    out = np.empty((height, width), dtype=np.int64)
    out[0] = _decode_first_row(reader, models, width)
    # padded rows (pad_rows): the row above, the flags of this row (that were row y - 1's
    # until overwritten phase by phase) and of row y - 2; shifts are views
    above_pad = np.zeros(width + 2 * PAD, dtype=np.int64)
    flags_pad = np.zeros(width + 2 * PAD, dtype=np.int64)
    flags2_pad = np.zeros(width + 2 * PAD, dtype=np.int64)
    flags = flags_pad[PAD:-PAD]
    phases = [(phase, offset, step, len(range(offset, width, step))) for phase, (offset, step) in enumerate(PHASES)]
    phases = [p for p in phases if p[3]]
    same = 0
    for y in range(1, height):
        above = out[y - 1]
        ctx_same = np.array([same])
        same = int(reader.bits(models.rows.p1(ctx_same))[0])
        models.rows.observe(ctx_same, np.array([same]))
        if same:
            out[y] = above
            flags2_pad[:] = flags_pad
            flags_pad[:] = 0
            continue
        above_pad[PAD:-PAD] = above
        above_pad[:PAD], above_pad[-PAD:] = above[0], above[-1]
        base = base_context(above_pad, flags_pad, flags2_pad)
        flags2_pad[:] = flags_pad  # row y - 1's flags, for row y + 1
        for phase, offset, step, n in phases:

            def at(d: int, offset: int = offset, step: int = step, n: int = n) -> np.ndarray:
                start = PAD + offset + d  # flags[x + d] for the phase's columns x
                return flags_pad[start : start + step * (n - 1) + 1 : step]

            ctx = base[offset::step]
            if phase == 1:  # == flag_context(1, ...)
                ctx = ctx | at(-2) << BASE_BITS | at(2) << (BASE_BITS + 1)
            elif phase == 2:
                b = BASE_BITS
                ctx = ctx | at(-1) << b | at(1) << (b + 1) | at(-3) << (b + 2) | at(3) << (b + 3)
            table = models.flags[phase]
            b = reader.bits(table.p1(ctx))
            table.observe(ctx, b)
            flags_pad[PAD + offset : PAD + offset + step * (n - 1) + 1 : step] = b
        out[y] = _decode_row_labels(reader, models, above, _at(above_pad, -1), _at(above_pad, 1), flags, y)
    return out.astype(np.uint8 if alphabet <= 256 else np.int32)


def _decode_first_row(reader: StreamReader, models: _Models, width: int) -> np.ndarray:
    flags0 = np.zeros(width - 1, dtype=np.int64)
    if width > 1:
        n_bits = (width - 1).bit_length()
        count = int(np.dot(reader.bits(np.full(n_bits, 0.5)), 1 << np.arange(n_bits - 1, -1, -1)))
        if count > width - 1:
            raise PayloadError(f"corrupt payload: row 0 boundary count {count} for width {width}")
        flags0 = reader.bits(np.full(width - 1, count / (width - 1)))
        if int(flags0.sum()) != count:
            raise PayloadError(f"corrupt payload: row 0 has {int(flags0.sum())} boundaries, its count says {count}")
    n = 1 + int(flags0.sum())
    if models.alphabet > 2:
        ctx = np.full(n, models.alphabet)
        explicit = reader.symbols(models.label.probs(ctx))
        models.label.update(ctx, explicit)
    elif models.alphabet == 2:
        explicit = (int(reader.symbols(np.full((1, 2), 0.5))[0]) + np.arange(n)) % 2
    else:
        explicit = np.zeros(n, dtype=np.int64)
    lengths = np.diff(np.concatenate([[0], np.flatnonzero(flags0) + 1, [width]]))
    return np.repeat(explicit, lengths)


def _decode_row_labels(reader: StreamReader, models: _Models, above: np.ndarray, above_left: np.ndarray,
                       above_right: np.ndarray, flags: np.ndarray, y: int) -> np.ndarray:
    """Row ``y`` from the row above and its change flags (reads the label stream)."""
    values = above.copy()
    cols = np.flatnonzero(flags)
    if cols.size == 0:
        return values
    if models.alphabet <= 2:
        if models.alphabet < 2:
            raise PayloadError(f"corrupt payload: a boundary in row {y} of a one-label map")
        values[cols] = 1 - values[cols]
        return values
    width = above.size
    a, a_left, a_right = above[cols], above_left[cols], above_right[cols]
    hctx = how_context(np.where(cols > 0, flags[cols - 1], 0), a, a_left, a_right)
    how = reader.symbols(models.how.probs(hctx))
    models.how.update(hctx, how)
    # (cols is increasing: only its first and last entry can be at the row's ends)
    if (cols[-1] == width - 1 and how[-1] == SAME_RIGHT_ABOVE) or (cols[0] == 0 and how[0] == SAME_LEFT_ABOVE):
        raise PayloadError(f"corrupt payload: row {y} refers to a pixel outside the row")
    is_explicit = how == EXPLICIT
    if is_explicit.any():
        ctx = a[is_explicit]
        new = reader.symbols(models.label.probs(ctx))
        if new.max() >= models.alphabet:
            raise PayloadError(f"corrupt payload: label {int(new.max())} in row {y} for {models.alphabet} labels")
        models.label.update(ctx, new)
        values[cols[is_explicit]] = new
    values[cols] = np.where(how == SAME_RIGHT_ABOVE, a_right, np.where(how == SAME_LEFT_ABOVE, a_left, values[cols]))
    copy_left = cols[how == SAME_LEFT]
    if copy_left.size == 0:
        return values
    if copy_left[0] == 0:
        raise PayloadError(f"corrupt payload: row {y} starts with a 'same as the left pixel' label")
    source = np.arange(width)
    source[copy_left] = 0
    return values[np.maximum.accumulate(source)]
