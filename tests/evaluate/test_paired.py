"""gesco.evaluate.paired: the paired difference and summary every bench and study script reports."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gesco.evaluate.paired import finite_summary, paired_difference


def test_paired_difference_is_the_mean_and_standard_error_of_the_differences():
    a, b = [0.5, 0.7, 0.9, 0.6], [0.4, 0.6, 0.5, 0.6]
    d = np.subtract(a, b)
    got = paired_difference(a, b)
    assert got["n"] == 4
    assert got["mean"] == pytest.approx(d.mean())
    assert got["se"] == pytest.approx(d.std(ddof=1) / 2.0)


def test_a_scene_missing_on_either_side_is_left_out_not_counted_as_zero():
    got = paired_difference([1.0, None, 3.0, float("nan"), 5.0], [0.0, 2.0, None, 1.0, 4.0])
    assert got["n"] == 2 and got["mean"] == pytest.approx(1.0) and got["se"] == pytest.approx(0.0)


def test_too_few_pairs_give_nan_not_a_made_up_error():
    one = paired_difference([2.0], [1.0])
    assert one["mean"] == 1.0 and math.isnan(one["se"]) and one["n"] == 1
    none = paired_difference([None], [1.0])
    assert math.isnan(none["mean"]) and none["n"] == 0
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])  # unpaired lengths are a caller's bug


def test_finite_summary():
    s = finite_summary([1.0, None, 3.0, float("inf")])
    assert s == {"mean": 2.0, "std": pytest.approx(math.sqrt(2.0)), "n": 2}
    assert finite_summary([4.0])["std"] == 0.0
    assert finite_summary([None])["n"] == 0 and math.isnan(finite_summary([])["mean"])
