"""The contract every sampler of the registry keeps, checked for each entry of
:data:`gesco.diffusion.samplers.REGISTRY` (a new sampler is covered on arrival):

* seeded: the same seed gives the same image, another seed another image;
* an image sampled alone equals the same image sampled in a batch with another job, in
  either order (the receiver batches jobs; per-image generators);
* ``progress`` is called once per network evaluation, ``(1, n) .. (n, n)``;
* the reported cost (:func:`~gesco.diffusion.pipeline.sampling_cost`, from the spec) equals
  the network forwards and images per forward counted on the model;
* the spec's facts hold: ``stochastic`` (the seed moves the image even from a fixed ``x_T``)
  and ``reads_variance`` (the learned variance output changes the image).

Each entry runs on the checkpoint kind its spec names (an ordinary guided model, or a
progressively distilled student) on a 40-step chain, through
:class:`~gesco.diffusion.pipeline.SemanticGenerator` as the receiver calls it.
"""

from __future__ import annotations

import pytest
import torch

from gesco.diffusion.checkpoint import ModelCard, save_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig, GaussianDiffusion
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator, sampling_cost
from gesco.diffusion.samplers import REGISTRY, distilled_timesteps, sample
from gesco.diffusion.unet import SpadeUNet
from gesco.sampler_specs import (
    DISTILLED_SAMPLERS,
    GUIDANCE_ONLY_SAMPLERS,
    KNOWN_SAMPLERS,
    SAMPLERS,
    SPECS,
    SamplerSpec,
)

T = 40
STEPS = 4  # the few-step samplers' and the student's step count
GUIDANCE = 2.0
#: batched vs single convolutions may round differently (tests/diffusion/test_pipeline.py)
BATCH_ATOL = 2e-4


def test_the_registry_binds_every_spec_and_the_name_lists_follow_from_it():
    assert list(REGISTRY) == [s.name for s in SPECS] == list(KNOWN_SAMPLERS)
    assert all(REGISTRY[s.name].spec is s for s in SPECS)
    # the lists the wire, the forms and the checkpoint cards use, as they were written by hand
    assert SAMPLERS == ("ancestral", "respaced", "ddim", "dpmpp-2m", "dpmpp-2m-sde", "dpmpp-2m-sde-ode-mean")
    assert DISTILLED_SAMPLERS == ("distilled",)
    assert GUIDANCE_ONLY_SAMPLERS == ("ddim", "dpmpp-2m", "dpmpp-2m-sde", "dpmpp-2m-sde-ode-mean")
    assert KNOWN_SAMPLERS == SAMPLERS + DISTILLED_SAMPLERS


def test_a_spec_that_contradicts_itself_is_refused():
    with pytest.raises(ValueError, match="grid"):
        SamplerSpec("x", "ddim", grid="karras", stochastic=False, reads_variance=False, model="guided",
                    runs_guidance_only_student=False, summary="")
    with pytest.raises(ValueError, match="guidance-only"):
        SamplerSpec("x", "ancestral", grid="full", stochastic=True, reads_variance=True, model="guided",
                    runs_guidance_only_student=True, summary="")


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _checkpoint(path, config, spec: SamplerSpec, guidance_only: bool = False) -> SemanticGenerator:
    """A seeded random tiny U-Net of the kind ``spec`` samples (or a guidance-only student),
    saved and loaded as the receiver does."""
    torch.manual_seed(11)
    model = SpadeUNet(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    distilled = None
    if spec.model == "distilled":
        distilled = {"steps": STEPS, "guidance_scale": GUIDANCE, "parametrisation": "v", "teacher": "t",
                     "timesteps": distilled_timesteps(T, STEPS)}
    if guidance_only:
        distilled = {"steps": T, "guidance_scale": GUIDANCE, "parametrisation": "eps", "teacher": "t",
                     "samplers": list(GUIDANCE_ONLY_SAMPLERS)}
    save_checkpoint(path, model, ModelCard(unet=config, diffusion=DiffusionConfig(num_timesteps=T),
                                           resolution=(16, 32), distilled=distilled))
    return SemanticGenerator.load(path, device="cpu")


def _settings(spec: SamplerSpec, seed: int) -> SamplingSettings:
    return SamplingSettings(sampler=spec.name, steps=T if spec.fixed_steps else STEPS, guidance_scale=GUIDANCE,
                            seed=seed)


def _maps(n: int) -> torch.Tensor:
    cond = torch.zeros(n, 36, 16, 32)
    for i in range(n):
        cond[i, 7 + 4 * i, :, : 10 + 6 * i] = 1
        cond[i, 21 - 3 * i, :, 10 + 6 * i:] = 1
    return cond


class _Counting(torch.nn.Module):
    """The model, counting its forwards and the images in each."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.batches = model, []

    def forward(self, x, t, y):
        self.batches.append(x.shape[0])
        return self.model(x, t, y)


@pytest.fixture(params=list(REGISTRY), ids=list(REGISTRY))
def entry(request, tmp_path, tiny_unet_config):
    spec = REGISTRY[request.param].spec
    return spec, _checkpoint(tmp_path / spec.name, tiny_unet_config, spec)


def test_seeded(entry, one_thread):
    spec, gen = entry
    cond = _maps(1)
    a = gen.generate(cond, _settings(spec, 6))
    assert torch.equal(a, gen.generate(cond, _settings(spec, 6)))
    assert (a - gen.generate(cond, _settings(spec, 7))).abs().max() > 0.05


def test_alone_equals_batched(entry, one_thread):
    spec, gen = entry
    cond = _maps(2)
    job, other = _settings(spec, 6), _settings(spec, 123)
    alone = gen.generate(cond[1:2], job)[0]
    batched = gen.generate(cond, [other, job])[1]
    reversed_ = gen.generate(cond.flip(0), [job, other])[0]
    assert (batched - alone).abs().max() < BATCH_ATOL
    assert (reversed_ - alone).abs().max() < BATCH_ATOL


#: every entry on the checkpoint kind its spec names, and the entries a guidance-only student runs on one
COST_CASES = [(name, False) for name in REGISTRY] + [(name, True) for name in GUIDANCE_ONLY_SAMPLERS]


@pytest.mark.parametrize(("name", "guidance_only"), COST_CASES,
                         ids=[n + ("-guidance-only-student" if g else "") for n, g in COST_CASES])
def test_progress_once_per_step_and_cost_equals_counted_evaluations(name, guidance_only, tmp_path, tiny_unet_config,
                                                                     one_thread):
    spec = REGISTRY[name].spec
    gen = _checkpoint(tmp_path / name, tiny_unet_config, spec, guidance_only)
    counting = _Counting(gen.model)
    gen.model = counting
    calls: list[tuple[int, int]] = []
    s = _settings(spec, 6)
    batch = 3
    gen.generate(_maps(batch), s, progress=lambda done, total: calls.append((done, total)))
    cost = sampling_cost(gen.card, s.sampler, s.steps, s.guidance_scale)
    n = cost.forwards
    assert n == (T if spec.fixed_steps else STEPS)
    assert calls == [(k, n) for k in range(1, n + 1)]
    assert len(counting.batches) == n
    assert set(counting.batches) == {batch * cost.batch_factor}
    assert cost.batch_factor == (1 if spec.folds_guidance or guidance_only else 2)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_the_spec_says_whether_it_is_stochastic_and_reads_the_variance(name, one_thread):
    """From one fixed ``x_T``: a stochastic sampler's image depends on the seed, a deterministic
    one's does not; a sampler that reads the variance gives another image when ``v`` changes."""
    spec = REGISTRY[name].spec
    chain = GaussianDiffusion(DiffusionConfig(num_timesteps=T))
    x_T = torch.randn((2, 3, 8, 8), generator=torch.Generator().manual_seed(0))

    def denoiser(v_scale: float):
        def den(x, t):
            eps = 0.9 * x + 0.05 * torch.sin(3 * x)
            return eps, (None if v_scale is None else torch.full_like(x, v_scale))
        return den

    def run(seed: int, v: float | None = 0.5) -> torch.Tensor:
        return sample(denoiser(v), chain, x_T.shape, sampler=name, steps=None if spec.fixed_steps else STEPS,
                      x_T=x_T, generator=torch.Generator().manual_seed(seed))

    differs_by_seed = (run(1) - run(2)).abs().max().item() > 1e-4
    assert differs_by_seed == spec.stochastic
    differs_by_v = (run(1, 0.5) - run(1, -0.5)).abs().max().item() > 1e-4
    assert differs_by_v == spec.reads_variance


@pytest.mark.parametrize("name", list(REGISTRY))
def test_stop_after_returns_the_clean_estimate_of_that_pass(name, one_thread):
    """``stop_after = k`` (the early-stop ending, docs/grain.md): ``k`` network passes, the clean
    estimate the full run had after its pass ``k`` (same seed, same draws before it), the
    reported cost ``k``; ``k`` = all passes is the full run."""
    from gesco.diffusion.samplers import prediction_to_x0
    from gesco.errors import GescoInputError
    from gesco.sampler_specs import network_evaluations

    spec = REGISTRY[name].spec
    chain = GaussianDiffusion(DiffusionConfig(num_timesteps=T))
    steps = None if spec.fixed_steps else STEPS
    n = T if spec.fixed_steps else STEPS
    x_T = torch.randn((2, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    parametrisation = "v" if spec.model == "distilled" else "eps"
    estimates: list[torch.Tensor] = []

    def den(x, t):
        out = 0.9 * x + 0.05 * torch.sin(3 * x)
        a = float(chain.alphas_cumprod[int(t[0])])
        estimates.append(prediction_to_x0(out, x, a ** 0.5, (1 - a) ** 0.5, parametrisation).clamp(-1, 1))
        return out, torch.zeros_like(x)

    def run(stop_after):
        return sample(den, chain, x_T.shape, sampler=name, steps=steps, x_T=x_T, stop_after=stop_after,
                      generator=torch.Generator().manual_seed(5), timesteps=None)

    full = run(None)
    recorded = list(estimates)
    assert len(recorded) == n
    for k in (1, n // 2, n - 1):
        estimates.clear()
        early = run(k)
        assert len(estimates) == k == network_evaluations(name, steps, guided=False, num_timesteps=T,
                                                          stop_after=k).forwards
        torch.testing.assert_close(early, recorded[k - 1], atol=1e-4, rtol=0)  # ancestral: float64 coefficients
    assert torch.equal(run(n), full)
    for bad in (0, n + 1, True, 2.5):
        with pytest.raises(GescoInputError, match="stop_after"):
            run(bad)
        with pytest.raises(GescoInputError, match="stop_after"):
            network_evaluations(name, steps, guided=False, num_timesteps=T, stop_after=bad)
