"""bench/bench_mean_temperature.py: it samples through the receiver's own setting (SamplingSettings.mean_temperature,
whose statistics tests/diffusion/test_mean_temperature.py checks) and refuses a tau outside [0, 1] before loading anything."""

import pytest


def test_tau_outside_zero_one_is_refused(load_script):
    mod = load_script("bench/bench_mean_temperature.py")
    with pytest.raises(SystemExit, match=r"--tau: mean temperature must be in \[0, 1\]"):
        mod.main(["x=checkpoints/none", "--tau", "1.5"])



def test_a_checkpoint_may_name_its_own_taus(load_script):
    mod = load_script("bench/bench_mean_temperature.py")
    assert mod.checkpoint_taus("a=ckpt/x", [1.0, 0.5]) == ("a", "ckpt/x", [1.0, 0.5])
    assert mod.checkpoint_taus("b=ckpt/y@0.5", [1.0]) == ("b", "ckpt/y", [0.5])
    assert mod.checkpoint_taus("ckpt/z@1,0", [0.5]) == ("z", "ckpt/z", [1.0, 0.0])
    with pytest.raises(SystemExit, match=r"--tau: mean temperature must be in \[0, 1\]"):
        mod.main(["x=checkpoints/none@2"])
