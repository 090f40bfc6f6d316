"""The scene's random numbers, drawn in blocks from one seeded ``np.random.Generator``."""


from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gesco.data.synthetic.scene import Colour


# --------------------------------------------------------------------------- random draws
class Draws:
    """Random numbers from one ``np.random.Generator``, drawn in blocks.

    A scalar ``Generator.uniform()`` call costs microseconds; a scene needs hundreds,
    so uniforms are drawn 1024 at a time and handed out one by one (deterministic).
    """

    _BLOCK = 1024

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self._buf: list[float] = []
        self._i = 0

    def random(self) -> float:
        """A uniform float in ``[0, 1)``."""
        if self._i == len(self._buf):
            self._buf = self.rng.random(self._BLOCK).tolist()
            self._i = 0
        v = self._buf[self._i]
        self._i += 1
        return v

    def array(self, n: int) -> np.ndarray:
        """``n`` uniforms in ``[0, 1)`` as an array, straight from the generator."""
        return self.rng.random(n)

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.random()

    def integer(self, n: int) -> int:
        """A uniform int in ``[0, n)``."""
        return min(int(self.random() * n), n - 1)

    def pick(self, items: Sequence, p: Sequence[float] | None = None):
        """One element of ``items``, uniformly or with probabilities ``p``."""
        if p is None:
            return items[self.integer(len(items))]
        u, acc = self.random(), 0.0
        for item, pi in zip(items, p):
            acc += pi
            if u < acc:
                return item
        return items[-1]

    def poisson(self, lam: float) -> int:
        """Knuth's method; fine for the small rates used here."""
        limit, k, prod = math.exp(-lam), 0, self.random()
        while prod > limit:
            k += 1
            prod *= self.random()
        return k

    def jitter(self, c: Colour, amount: float) -> Colour:
        """``c`` plus independent uniform noise in ``[-amount, amount]`` per channel."""
        return (c[0] + self.uniform(-amount, amount), c[1] + self.uniform(-amount, amount),
                c[2] + self.uniform(-amount, amount))
