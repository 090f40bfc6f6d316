"""bench/bench_grain_endings.py: its grid to t_end, the recorded clean estimates, the switched denoiser."""

import pytest
import torch

from gesco.diffusion.gaussian import DiffusionConfig, GaussianDiffusion
from gesco.diffusion.samplers import sample


@pytest.fixture
def mod(load_script, monkeypatch):
    """The script, with ``bench/`` on the path for its sibling imports (as ``python bench/...`` has it)."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "bench"))
    return load_script("bench/bench_grain_endings.py")


def _denoiser(x, t):
    return 0.9 * x + 0.05 * torch.sin(3 * x), None


def test_the_grid_to_t_end_runs_from_the_noisiest_step_down_to_t_end(mod):
    chain = GaussianDiffusion(DiffusionConfig(num_timesteps=1000))
    grid = mod.logsnr_grid_to(chain, 8, 44)
    t = grid.timesteps.tolist()
    assert len(t) == 8 and t[0] == 44 and t[-1] == 999 and t == sorted(set(t))
    torch.testing.assert_close(grid.alphas_cumprod, chain.alphas_cumprod[grid.timesteps])  # the same abar


def test_the_recorder_sees_every_pass_and_its_last_estimate_is_the_image(mod):
    chain = GaussianDiffusion(DiffusionConfig(num_timesteps=40))
    rec = mod.Recorder(_denoiser, chain)
    x_T = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    image = sample(rec, chain, x_T.shape, sampler="dpmpp-2m-sde-ode-mean", steps=5, x_T=x_T,
                   generator=torch.Generator().manual_seed(1))
    assert len(rec.x0) == 5 and torch.equal(rec.x0[-1], image)
    early = sample(_denoiser, chain, x_T.shape, sampler="dpmpp-2m-sde-ode-mean", steps=5, x_T=x_T, stop_after=3,
                   generator=torch.Generator().manual_seed(1))
    assert torch.equal(early, rec.x0[2])  # stop_after = the recorded pass, exactly
    with pytest.raises(ValueError, match="one time index"):
        rec(x_T, torch.tensor([3, 4]))


def test_the_switched_denoiser_asks_the_low_one_below_the_switch(mod):
    both = mod.switched(lambda x, t: ("high", None), lambda x, t: ("low", None), 200)
    x = torch.zeros(1, 3, 2, 2)
    assert both(x, torch.tensor([199]))[0] == "low"
    assert both(x, torch.tensor([200]))[0] == "high"
    with pytest.raises(SystemExit, match="NAME=PATH"):
        mod.parse_checkpoints(["default=somewhere"])
