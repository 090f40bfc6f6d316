"""An adaptive binary range coder (the arithmetic coder of LZMA), in pure Python.

Every decision the map coder makes is a bit coded with an adaptive probability: an
11-bit estimate ``p`` of "the bit is 0" that moves 1/16 of the way towards each coded
bit. A bit with probability ``q`` costs about ``-log2(q)`` bits of output, so decisions
that are almost always the same (a boundary that continues straight down) cost a small
fraction of a bit.

The coder works on 32-bit integers: ``range`` is split at ``bound = (range >> 11) * p``;
a 0 keeps the low part, a 1 the high part; when ``range`` drops below 2^24 a byte is
shifted out. Carries are handled with LZMA's cache/pending-0xFF scheme. The encoder
writes exactly the bytes the decoder reads: the decoder stops as soon as it would read
past the payload and checks at the end that it consumed all of it, which catches
truncated and over-long payloads (:class:`~gesco.errors.PayloadError`).

Probabilities live in plain Python lists owned by the caller ("models"), one slot per
context; :func:`new_model` makes one with every slot at 1/2.
"""

from __future__ import annotations

from gesco.errors import PayloadError

PROB_BITS = 11
PROB_ONE = 1 << PROB_BITS  # probabilities are integers in (0, 2048), p(bit = 0) = p / 2048
MOVE_BITS = 4  # adaptation speed: move 1/16 of the way towards the coded bit (4 beat 3, 5, 6 on street maps)
_TOP = 1 << 24
_MASK32 = 0xFFFFFFFF


def new_model(size: int) -> list[int]:
    """``size`` adaptive probabilities, each starting at 1/2."""
    return [PROB_ONE // 2] * size


class RangeEncoder:
    """Encode bits into bytes. Call :meth:`finish` once to get the payload."""

    def __init__(self) -> None:
        self._low = 0
        self._range = _MASK32
        self._cache = 0
        self._cache_size = 1
        self._out = bytearray()

    def bit(self, model: list[int], ctx: int, bit: int) -> None:
        """Code one bit with the adaptive probability ``model[ctx]`` (updated in place)."""
        p = model[ctx]
        bound = (self._range >> PROB_BITS) * p
        if bit:
            self._low += bound
            self._range -= bound
            model[ctx] = p - (p >> MOVE_BITS)
        else:
            self._range = bound
            model[ctx] = p + ((PROB_ONE - p) >> MOVE_BITS)
        while self._range < _TOP:
            self._range = (self._range << 8) & _MASK32
            self._shift_low()

    def tree(self, model: list[int], base: int, nbits: int, value: int) -> None:
        """Code ``value`` in ``[0, 2**nbits)`` most significant bit first with a binary tree.

        The tree uses ``model[base + 1 : base + 2**nbits]`` (node ``m`` has children
        ``2m`` and ``2m + 1``), so each bit is coded in the context of the bits before it.
        """
        m = 1
        for i in range(nbits - 1, -1, -1):
            b = (value >> i) & 1
            self.bit(model, base + m, b)
            m = (m << 1) | b

    def _shift_low(self) -> None:
        low = self._low
        if low < 0xFF000000 or low > _MASK32:
            carry = low >> 32
            temp = self._cache
            while True:
                self._out.append((temp + carry) & 0xFF)
                temp = 0xFF
                self._cache_size -= 1
                if self._cache_size == 0:
                    break
            self._cache = (low >> 24) & 0xFF
        self._cache_size += 1
        self._low = (low & 0x00FFFFFF) << 8

    def finish(self) -> bytes:
        """Flush the coder and return the coded bytes (the first, always-zero byte dropped)."""
        for _ in range(5):
            self._shift_low()
        return bytes(self._out[1:])


class RangeDecoder:
    """Decode bits coded by :class:`RangeEncoder`, with the same models in the same order.

    Args:
        data: the coded bytes (as returned by :meth:`RangeEncoder.finish`).
    Raises:
        PayloadError: when ``data`` is too short to hold a coded stream.
    """

    def __init__(self, data: bytes) -> None:
        if len(data) < 4:
            raise PayloadError(f"coded stream too short: {len(data)} bytes, a stream has at least 4")
        self._data = data
        self._pos = 4
        self._range = _MASK32
        self._code = int.from_bytes(data[:4], "big")

    def _next_byte(self) -> int:
        pos = self._pos
        if pos >= len(self._data):
            # the decoder reads exactly the bytes the encoder wrote, never more
            raise PayloadError("payload is truncated: the decoder ran past its end")
        self._pos = pos + 1
        return self._data[pos]

    def bit(self, model: list[int], ctx: int) -> int:
        """Decode one bit with the adaptive probability ``model[ctx]`` (updated in place)."""
        p = model[ctx]
        bound = (self._range >> PROB_BITS) * p
        if self._code < bound:
            self._range = bound
            model[ctx] = p + ((PROB_ONE - p) >> MOVE_BITS)
            b = 0
        else:
            self._code -= bound
            self._range -= bound
            model[ctx] = p - (p >> MOVE_BITS)
            b = 1
        while self._range < _TOP:
            self._range = (self._range << 8) & _MASK32
            self._code = ((self._code << 8) | self._next_byte()) & _MASK32
        return b

    def tree(self, model: list[int], base: int, nbits: int) -> int:
        """Decode a value coded by :meth:`RangeEncoder.tree`."""
        m = 1
        for _ in range(nbits):
            m = (m << 1) | self.bit(model, base + m)
        return m - (1 << nbits)

    def check_end(self) -> None:
        """Raise :class:`PayloadError` unless the stream was consumed exactly."""
        if self._pos != len(self._data):
            raise PayloadError(
                f"payload has {len(self._data) - self._pos} unused trailing bytes (corrupt or over-long payload)"
            )
