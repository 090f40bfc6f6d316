from dataclasses import replace

import pytest
import torch

from gesco.diffusion.checkpoint import ModelCard, save_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator
from gesco.diffusion.samplers import GUIDANCE_ONLY_SAMPLERS
from gesco.diffusion.unet import SpadeUNet
from gesco.errors import CheckpointError, GescoInputError, ShapeError
from gesco.semantics.fds import fds_filter


def random_generator(path, config, seed: int, diffusion: DiffusionConfig) -> SemanticGenerator:
    """A tiny random-weight U-Net saved at ``path`` and loaded as a pipeline (16 x 32)."""
    torch.manual_seed(seed)
    m = SpadeUNet(config)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.02 * torch.randn_like(p))
    save_checkpoint(path, m, ModelCard(unet=config, diffusion=diffusion, resolution=(16, 32)))
    return SemanticGenerator.load(path, device="cpu")


@pytest.fixture
def generator(tmp_path, tiny_unet_config):
    return random_generator(tmp_path / "g", tiny_unet_config, 0, DiffusionConfig())


@pytest.fixture
def one_thread():
    """Batch-size-independent float rounding: with several threads, conv kernels differ by batch size
    and the random test model (x0 = (x_t - sigma eps) / alpha amplifies by ~160 at t = 999) turns
    1e-7 differences into visible ones."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_generate_shapes_range_and_seed_independence_of_batch(generator, one_thread):
    cond = torch.zeros(3, 36, 16, 32)
    cond[:, 7] = 1
    # batch independence is promised for the deterministic samplers (DPM-Solver++, DDIM eta=0)
    s = [SamplingSettings(sampler="dpmpp-2m", steps=3, seed=i) for i in (5, 6, 7)]
    imgs = generator.generate(cond, s)
    assert imgs.shape == (3, 3, 16, 32)
    assert imgs.min() >= -1 and imgs.max() <= 1
    alone = generator.generate(cond[1:2], SamplingSettings(sampler="dpmpp-2m", steps=3, seed=6))
    # even with one thread, oneDNN may pick another conv kernel for another batch size: the
    # model outputs then differ by ~2e-7 and the x0 amplification (~160) makes that ~3e-5 in
    # the image (measured on an AVX-512 AMD EPYC); another seed's image differs by O(1)
    assert torch.allclose(imgs[1], alone[0], atol=2e-4)
    assert not torch.allclose(imgs[0], imgs[1], atol=2e-4)
    u8 = SemanticGenerator.to_uint8(imgs)
    assert u8.shape == (3, 16, 32, 3) and u8.dtype.name == "uint8"


@pytest.fixture
def short_chain_generator(tmp_path, tiny_unet_config):
    """A random tiny model on a 40-step chain, so the full ancestral sampler is quick."""
    return random_generator(tmp_path / "short", tiny_unet_config, 1, DiffusionConfig(num_timesteps=40))


def _received(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` different noisy conditionings ``(n, 36, 16, 32)``: two present classes each, every map
    plus N(0, 0.5^2) noise (as received through a noisy channel, before FDS)."""
    g = torch.Generator().manual_seed(seed)
    cond = torch.zeros(n, 36, 16, 32)
    for i in range(n):
        a, b = 1 + i % 30, 31 - i % 30
        cond[i, a, :, : 8 + 2 * i] = 1
        cond[i, b, :, 8 + 2 * i:] = 1
    return cond + 0.5 * torch.randn(cond.shape, generator=g)


def _assert_each_image_is_its_own(gen: SemanticGenerator, cond: torch.Tensor, per: list[SamplingSettings]) -> None:
    """Each image of the mixed batch equals the same image generated alone (a batch of one), in
    the given order and reversed; and the image's own settings matter: sampled alone with the
    first image's settings (its own seed and maps) it differs by O(0.1) (so a pipeline that
    sampled the whole batch with the first image's settings fails here)."""
    batched = gen.generate(cond, per)
    reversed_ = gen.generate(cond.flip(0), per[::-1]).flip(0)
    first = per[0]
    for i, s in enumerate(per):
        alone = gen.generate(cond[i:i + 1], s)[0]
        # 2e-4: batched vs single convolutions round differently (see test above); O(0.1) otherwise
        assert (batched[i] - alone).abs().max() < 2e-4, (i, s)
        assert (reversed_[i] - alone).abs().max() < 2e-4, (i, s)
        if s.group_key() != first.group_key():
            with_first = gen.generate(cond[i:i + 1], replace(first, seed=s.seed))[0]
            assert (with_first - alone).abs().max() > 0.05, (i, s, "its settings do not change the image")


def test_a_mixed_batch_gives_each_image_as_generated_alone(short_chain_generator, one_thread):
    """Samplers, steps, guidance scales, eta, seeds and FDS on or off, all in one call: the
    pipeline groups by ``group_key`` and must sample each group with its own settings."""
    cond = _received(9)
    cond[1::2] = fds_filter(cond[1::2])  # every other image after FDS, the rest raw
    per = [
        SamplingSettings(sampler="dpmpp-2m", steps=3, guidance_scale=2.0, seed=5),
        SamplingSettings(sampler="ddim", steps=4, guidance_scale=1.5, eta=1.0, seed=6),
        SamplingSettings(sampler="ddim", steps=4, guidance_scale=1.5, eta=0.0, seed=7),
        SamplingSettings(sampler="dpmpp-2m", steps=3, guidance_scale=2.0, seed=8),  # the first's group
        SamplingSettings(sampler="respaced", steps=5, guidance_scale=3.0, seed=9),
        SamplingSettings(sampler="ancestral", guidance_scale=2.0, seed=10),
        SamplingSettings(sampler="dpmpp-2m-sde", steps=4, guidance_scale=2.0, seed=11),
        SamplingSettings(sampler="dpmpp-2m", steps=6, guidance_scale=1.0, seed=12),
        SamplingSettings(sampler="dpmpp-2m-sde-ode-mean", steps=4, guidance_scale=2.5, seed=13),
    ]
    _assert_each_image_is_its_own(short_chain_generator, cond, per)


def _student(path, config, distilled: dict, seed: int) -> SemanticGenerator:
    """A random tiny U-Net saved with a ``distilled`` record (a student as `gesco train distill` writes it)."""
    torch.manual_seed(seed)
    m = SpadeUNet(config)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.02 * torch.randn_like(p))
    save_checkpoint(path, m, ModelCard(unet=config, diffusion=DiffusionConfig(), resolution=(16, 32),
                                       distilled=distilled))
    return SemanticGenerator.load(path, device="cpu")


def test_a_mixed_batch_on_the_guidance_only_student(tmp_path, tiny_unet_config, one_thread):
    """The receiver's default model kind: any listed sampler and step count, at its folded scale."""
    gen = _student(tmp_path / "student", tiny_unet_config,
                   {"steps": 1000, "guidance_scale": 2.0, "parametrisation": "eps", "teacher": "t",
                    "samplers": list(GUIDANCE_ONLY_SAMPLERS)}, seed=3)
    cond = _received(6, seed=1)
    cond[::2] = fds_filter(cond[::2])
    per = [
        SamplingSettings(sampler="dpmpp-2m-sde-ode-mean", steps=8, guidance_scale=2.0, seed=1),
        SamplingSettings(sampler="ddim", steps=3, guidance_scale=2.0, eta=1.0, seed=2),
        SamplingSettings(sampler="dpmpp-2m-sde-ode-mean", steps=8, guidance_scale=2.0, seed=3),
        SamplingSettings(sampler="ddim", steps=3, guidance_scale=2.0, eta=0.0, seed=4),
        SamplingSettings(sampler="dpmpp-2m", steps=5, guidance_scale=2.0, seed=5),
        SamplingSettings(sampler="dpmpp-2m-sde", steps=4, guidance_scale=2.0, seed=6),
    ]
    _assert_each_image_is_its_own(gen, cond, per)


def test_a_mixed_batch_on_the_progressive_student(tmp_path, tiny_unet_config, one_thread):
    """A progressively distilled student runs one chain (sampler, steps and scale fixed): seeds
    and maps (FDS on / off) still belong to each image."""
    from gesco.diffusion.samplers import distilled_timesteps

    gen = _student(tmp_path / "progressive", tiny_unet_config,
                   {"steps": 2, "guidance_scale": 2.0, "parametrisation": "v", "teacher": "t",
                    "timesteps": distilled_timesteps(1000, 2)}, seed=4)
    cond = _received(4, seed=2)
    cond[1::2] = fds_filter(cond[1::2])
    per = [SamplingSettings(sampler="distilled", steps=2, guidance_scale=2.0, seed=s) for s in (3, 1, 4, 1)]
    _assert_each_image_is_its_own(gen, cond, per)
    # same seed, other maps (FDS or not): other images (~0.05 apart with this random model, 250x the tolerance)
    out = gen.generate(cond, per)
    assert (out[1] - out[3]).abs().max() > 0.01


def test_bad_input(generator, tmp_path):
    with pytest.raises(ShapeError):
        generator.generate(torch.zeros(1, 35, 16, 32))
    with pytest.raises(GescoInputError, match="sampler"):
        generator.generate(torch.zeros(1, 36, 16, 32), SamplingSettings(sampler="euler"))
    with pytest.raises(GescoInputError, match="guidance"):
        generator.generate(torch.zeros(1, 36, 16, 32), SamplingSettings(guidance_scale=float("nan")))
    with pytest.raises(CheckpointError, match="gesco train diffusion"):
        SemanticGenerator.load(tmp_path / "missing")


def test_finishing_smooths_the_received_sky_and_nothing_else(tmp_path, tiny_unet_config, one_thread):
    """The generator's finishing (gesco.diffusion.finishing) runs on the sampler's images, driven by the
    conditioning's own label map: sky pixels change (toward their in-sky average), road pixels do not."""
    from gesco.diffusion.finishing import SKY, finish, received_labels, sky_finishing

    plain = random_generator(tmp_path / "p", tiny_unet_config, 0, DiffusionConfig())
    finished = SemanticGenerator(plain.model, plain.card, "cpu", sky_finishing(1.0))
    cond = torch.zeros(2, 36, 16, 32)
    cond[:, 7] = 1.0  # road everywhere ...
    cond[:, SKY, :8] = 2.0  # ... but the sky in the top half
    s = SamplingSettings(sampler="dpmpp-2m", steps=3, seed=3)
    a, b = plain.generate(cond, s), finished.generate(cond, s)
    road = (received_labels(cond) == 7).unsqueeze(1).expand_as(a)
    assert torch.equal(a[road], b[road])
    assert not torch.allclose(a[~road], b[~road])
    assert torch.allclose(b, finish(a, received_labels(cond), sky_finishing(1.0)))
    assert b.min() >= -1 and b.max() <= 1


def test_invalid_finishing_is_refused_at_construction(generator):
    from gesco.diffusion.finishing import Finishing

    with pytest.raises(GescoInputError, match="sigma"):
        SemanticGenerator(generator.model, generator.card, "cpu", Finishing(classes=(23,), sigma=-1.0))
