"""Paired comparisons of per-scene scores: the statistics every bench and study script reports.

Two rows scored on the same scenes (and seeds) are compared by the per-scene differences
``d_i = a_i - b_i``: their mean and its standard error ``std(d, ddof=1) / sqrt(n)``. A scene
where either value is missing (``None``) or not finite (an image with no scored class) is left
out of the pair, not counted as zero. Plain numpy: importing it loads no model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def finite(values: Iterable[float | None]) -> np.ndarray:
    """The values that are neither ``None`` nor NaN / inf, as a float64 array."""
    return np.array([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)


def paired_difference(a: Sequence[float | None], b: Sequence[float | None]) -> dict[str, float]:
    """Mean and standard error of ``a - b`` over the scenes where both are finite.

    Args:
        a, b: per-scene values of the two rows, in the same scene order (equal lengths).

    Returns:
        ``{"mean", "se", "n"}``; ``mean`` is NaN without a pair, ``se`` NaN with fewer than two.
    """
    d = finite(x - y if x is not None and y is not None else None for x, y in zip(a, b, strict=True))
    return {"mean": float(d.mean()) if d.size else float("nan"),
            "se": float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan"),
            "n": int(d.size)}


def finite_summary(values: Iterable[float | None]) -> dict[str, float]:
    """Mean, sample standard deviation (``ddof = 1``; 0 for one value) and count of the finite values
    (NaN mean and std when there are none)."""
    v = finite(values)
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}
