"""bench/bench_mean_temperature.py: it samples through the receiver's own setting (SamplingSettings.mean_temperature,
whose statistics tests/diffusion/test_mean_temperature.py checks) and refuses a tau outside [0, 1] before loading anything."""

import pytest


def test_tau_outside_zero_one_is_refused(load_script):
    mod = load_script("bench/bench_mean_temperature.py")
    with pytest.raises(SystemExit, match=r"--tau: mean temperature must be in \[0, 1\]"):
        mod.main(["x=checkpoints/none", "--tau", "1.5"])

