"""bench/bench_mean_temperature.py: the starting noise is the pipeline's, its mean scaled by tau."""

import pytest
import torch

from gesco.diffusion.samplers import _noise


def test_tau_one_is_the_pipelines_start_and_tau_zero_removes_the_mean(load_script):
    mod = load_script("bench/bench_mean_temperature.py")
    shape = (2, 3, 8, 16)
    same, gens = mod.start_noise([5, 7], shape, 1.0)
    ref_gens = [torch.Generator().manual_seed(s) for s in (5, 7)]
    torch.testing.assert_close(same, _noise(shape, ref_gens, "cpu"))  # x_T as the samplers draw it
    # both generators were advanced past x_T exactly as the pipeline's are: the next draws agree
    torch.testing.assert_close(_noise(shape, gens, "cpu"), _noise(shape, ref_gens, "cpu"))
    zero, _ = mod.start_noise([5, 7], shape, 0.0)
    assert zero.mean((2, 3)).abs().max() < 1e-6
    half, _ = mod.start_noise([5, 7], shape, 0.5)
    torch.testing.assert_close(half.mean((2, 3)), 0.5 * same.mean((2, 3)))
    torch.testing.assert_close(half - half.mean((2, 3), keepdim=True), same - same.mean((2, 3), keepdim=True))


def test_tau_outside_zero_one_is_refused(load_script):
    mod = load_script("bench/bench_mean_temperature.py")
    with pytest.raises(SystemExit, match=r"--tau values must be in \[0, 1\]"):
        mod.main(["x=checkpoints/none", "--tau", "1.5"])
