"""Guided progressive distillation: closed-form target, loss, training loop, checkpoint, sampler."""

import json
import math
from pathlib import Path

import pytest
import torch

from gesco.cli import main
from gesco.diffusion.checkpoint import ModelCard, load_checkpoint, read_card, save_checkpoint
from gesco.diffusion.distill import (
    DistillGrid,
    distillation_loss,
    loss_weight,
    two_step_target,
    x0_predictor,
)
from gesco.diffusion.gaussian import DiffusionConfig, GaussianDiffusion
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator
from gesco.diffusion.samplers import (
    SAMPLERS,
    DistilledSamplerError,
    distilled_timesteps,
    network_evaluations,
    prediction_to_x0,
    sample,
)
from gesco.diffusion.unet import SpadeUNet
from gesco.errors import CheckpointError, GescoInputError
from gesco.train.distill import DistillConfig, StepScenes, plan_rounds, step_batches

FULL = GaussianDiffusion(DiffusionConfig())
ABAR = FULL.alphas_cumprod  # float64


def _sample_distilled(student, diffusion, shape, **kwargs):
    """The ``"distilled"`` sampler through the registry's entry point, :func:`sample` by name."""
    return sample(student, diffusion, shape, sampler="distilled", **kwargs)


def _coef(t: int) -> tuple[float, float]:
    """``(alpha, sigma)`` of original time ``t`` (``t = -1``: the clean end)."""
    if t < 0:
        return 1.0, 0.0
    a = float(ABAR[t])
    return math.sqrt(a), math.sqrt(1.0 - a)


# ------------------------------------------------------------------ grids and parametrisations
def test_grids_are_nested_and_end_at_T():
    for k in (1, 2, 4, 8, 32):
        fine, coarse = distilled_timesteps(1000, 2 * k), distilled_timesteps(1000, k)
        assert coarse == fine[1::2] and coarse[-1] == 999 and len(set(fine)) == 2 * k
    g8 = DistillGrid.build(FULL, 8)
    assert g8.timesteps.tolist() == [124, 249, 374, 499, 624, 749, 874, 999]
    g4 = g8.coarser()
    ref = DistillGrid.build(FULL, 4)
    assert torch.equal(g4.timesteps, ref.timesteps) and torch.equal(g4.alpha, ref.alpha) and torch.equal(g4.sigma, ref.sigma)
    assert float(g8.alpha[0]) == 1.0 and float(g8.sigma[0]) == 0.0
    with pytest.raises(GescoInputError):
        distilled_timesteps(1000, 0)
    with pytest.raises(GescoInputError):
        DistillGrid.build(FULL, 3).coarser()


@pytest.mark.parametrize("param", ["v", "x0", "eps"])
def test_prediction_to_x0_inverts_each_parametrisation(param):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(3, 3, 4, 4, generator=g) * 2 - 1, torch.randn(3, 3, 4, 4, generator=g)
    a, s = _coef(600)
    z = a * x0 + s * eps
    pred = {"v": a * eps - s * x0, "x0": x0, "eps": eps}[param]
    assert torch.allclose(prediction_to_x0(pred, z, a, s, param), x0, atol=1e-4)
    with pytest.raises(GescoInputError):
        prediction_to_x0(pred, z, a, s, "score")


# ------------------------------------------------------------------ the closed-form target
def _linear_teacher(z, t, alpha, sigma):
    """A fake teacher linear in ``z`` with time-dependent coefficients."""
    tf = t.double().view(-1, 1, 1, 1)
    return ((0.2 + tf / 2000.0) * z.double() + 0.1 * torch.sin(tf / 100.0)).float()


def test_two_step_target_is_the_x0_whose_one_ddim_step_lands_on_two_teacher_steps():
    grid = DistillGrid.build(FULL, 8)  # teacher chain of 8 steps; the student's steps span 2
    z = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(1)).double()
    pos = torch.tensor([8, 6, 4, 2])  # the last one lands on the clean end
    target = two_step_target(_linear_teacher, z.float(), pos, grid).double()
    for b, p in enumerate(pos.tolist()):
        t1, t2 = grid.timesteps[p - 1].item(), grid.timesteps[p - 2].item()
        t3 = grid.timesteps[p - 3].item() if p >= 3 else -1
        (a1, s1), (a2, s2), (a3, s3) = _coef(t1), _coef(t2), _coef(t3)

        def teach(x, t):
            tf = float(t)
            return (0.2 + tf / 2000.0) * x + 0.1 * math.sin(tf / 100.0)

        zb = z[b]
        x1 = teach(zb, t1)
        z2 = a2 * x1 + s2 / s1 * (zb - a1 * x1)  # teacher DDIM step 1 (float64, independent)
        x2 = teach(z2, t2)
        z3 = a3 * x2 + s3 / s2 * (z2 - a2 * x2)  # teacher DDIM step 2
        expected = (z3 - s3 / s1 * zb) / (a3 - s3 / s1 * a1)  # Salimans & Ho, Algorithm 2
        assert torch.allclose(target[b], expected, rtol=1e-4, atol=1e-4 / max(a3 - s3 / s1 * a1, 1e-3))
        # one student DDIM step t1 -> t3 from x~ reproduces the teachers' two steps
        landed = a3 * target[b] + s3 / s1 * (zb - a1 * target[b])
        assert torch.allclose(landed, z3, atol=2e-5)
        if p == 2:
            assert torch.allclose(target[b], z3, atol=1e-5)  # to the clean end: x~ = z''
    with pytest.raises(GescoInputError):
        two_step_target(_linear_teacher, z.float(), torch.tensor([1, 2, 3, 4]), grid)


def _gaussian_x0(mu: float, s: float):
    """The exact clean estimate E[x0 | z_t] for x0 ~ N(mu, s^2) per pixel."""

    def x0_fn(z, t, alpha, sigma):
        return mu + alpha * s * s * (z - alpha * mu) / (alpha * alpha * s * s + sigma * sigma)

    return x0_fn


def test_ideal_student_on_gaussian_toy_reproduces_the_teacher_in_half_the_steps():
    """A student predicting x~ exactly, run by the ``"distilled"`` sampler for K steps, gives the teacher's
    2K-step DDIM sample from the same x_T (checks the target, the grid nesting and the sampler)."""
    teacher = _gaussian_x0(0.3, 0.5)
    k = 4
    fine = DistillGrid.build(FULL, 2 * k)
    pos_of = {int(t): i + 1 for i, t in enumerate(fine.timesteps.tolist())}

    def student(x, t):
        pos = torch.tensor([pos_of[int(v)] for v in t])
        return two_step_target(teacher, x, pos, fine), None

    def teacher_den(x, t):
        alpha, sigma = (torch.tensor([_coef(int(v))[i] for v in t]).float().view(-1, 1, 1, 1) for i in (0, 1))
        return teacher(x, t, alpha, sigma), None

    x_T = torch.randn(64, 1, 2, 2, generator=torch.Generator().manual_seed(2))
    fast = _sample_distilled(student, FULL, x_T.shape, steps=k, parametrisation="x0", x_T=x_T, clip=False)
    slow = _sample_distilled(teacher_den, FULL, x_T.shape, steps=2 * k, parametrisation="x0", x_T=x_T, clip=False)
    assert torch.allclose(fast, slow, atol=1e-4)
    assert not torch.allclose(fast, _sample_distilled(teacher_den, FULL, x_T.shape, steps=k, parametrisation="x0",
                                                     x_T=x_T, clip=False), atol=1e-2)  # plain K-step DDIM differs


def test_loss_weight_is_truncated_snr():
    a = torch.tensor([0.1, 0.9, 0.999]).view(-1, 1, 1, 1)
    s = (1 - a**2).sqrt()
    w = loss_weight(a, s)
    snr = (a.flatten() ** 2) / (s.flatten() ** 2)
    assert w[0] == 1.0 and torch.allclose(w[1:], snr[1:])
    assert torch.equal(loss_weight(a, s, "uniform"), torch.ones(3))


# ------------------------------------------------------------------ training
@pytest.fixture
def teacher(tiny_unet_config):
    torch.manual_seed(0)
    m = SpadeUNet(tiny_unet_config)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return m.eval()


def test_a_few_student_steps_reduce_the_distillation_loss_on_a_fixed_batch(teacher, tiny_unet_config):
    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(4, 3, 16, 32, generator=g) * 2 - 1
    y = torch.zeros(4, 36, 16, 32)
    y[:, 7], y[:2, 7, :8], y[:2, 21, :8] = 1, 0, 1
    grid = DistillGrid.build(FULL, 4)
    student_grid = grid.coarser()
    j = torch.tensor([1, 2, 1, 2])
    alpha, sigma = student_grid.coeffs(j)
    z = alpha * x0 + sigma * torch.randn(x0.shape, generator=g)
    t = student_grid.time(j)
    with torch.no_grad():
        target = two_step_target(x0_predictor(teacher, y, "eps", 2.0), z, 2 * j, grid)
    student = SpadeUNet(tiny_unet_config)
    student.load_state_dict(teacher.state_dict())
    opt = torch.optim.AdamW(student.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        loss = distillation_loss(student(z, t, y), z, alpha, sigma, target, "v")["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.9 * losses[0], losses


def _teacher_checkpoint(tmp_path, teacher, tiny_unet_config):
    card = ModelCard(unet=tiny_unet_config, diffusion=DiffusionConfig(), resolution=(16, 32),
                     conditioning={"noisy_training": {"psnrs_db": [10.0, 100.0], "weights": [1.0, 1.0]}},
                     training={"steps": 7})
    save_checkpoint(tmp_path / "teacher", teacher, card)
    return tmp_path / "teacher"


@pytest.fixture
def distilled(tmp_path, teacher, tiny_unet_config):
    """``gesco train distill`` on the tiny teacher: guidance round at 4 steps, one halving round -> 2 steps."""
    path = _teacher_checkpoint(tmp_path, teacher, tiny_unet_config)
    out = tmp_path / "distill"
    args = ["train", "distill", "--no-progress", "--set", f"teacher={path}", "--set", f"out_dir={out}",
            "--set", "base_steps=4", "--set", "rounds=1", "--set", "guidance_round_steps=2",
            "--set", "steps_per_round=2", "--set", "batch_size=1", "--set", "noise_draws=2", "--set", "train_size=8",
            "--set", "device=cpu", "--set", "log_every=1", "--set", "warmup_steps=0"]
    assert main(args) == 0
    return {"teacher": path, "out": out, "args": args}


def test_distill_command_writes_students_that_round_trip_and_sample(distilled):
    out = distilled["out"]
    assert (out / "round0-4steps.safetensors").is_file() and (out / "round1-2steps.safetensors").is_file()
    card = read_card(out / "distilled")
    d = card.distilled
    assert d["steps"] == 2 and d["guidance_scale"] == 2.0 and d["parametrisation"] == "v"
    assert d["teacher"] == str(distilled["teacher"]) and d["timesteps"] == distilled_timesteps(1000, 2)
    assert d["round_teacher"] == str(out / "round0-4steps") and read_card(out / "round0-4steps").distilled["steps"] == 4
    assert card.conditioning["p_uncond"] == 0.0
    assert ModelCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    log = [json.loads(line) for line in (out / "distill_log.jsonl").read_text().splitlines()]
    assert [(r["round"], r["step"]) for r in log] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert all(math.isfinite(r["loss"]) for r in log)

    gen = SemanticGenerator.load(out / "distilled", device="cpu")
    calls = []
    gen.model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    cond = torch.zeros(3, 36, 16, 32)
    cond[:, 7] = 1
    s = SamplingSettings(sampler="distilled", steps=2, seed=4)
    imgs = gen.generate(cond, s)
    assert imgs.shape == (3, 3, 16, 32) and imgs.min() >= -1 and imgs.max() <= 1
    assert calls == [3, 3]  # two steps, one unguided forward of the batch each
    assert torch.equal(imgs, gen.generate(cond, s))  # deterministic

    # resuming the finished run retrains nothing
    before = (out / "distilled.safetensors").read_bytes()
    assert main(distilled["args"]) == 0
    assert (out / "distilled.safetensors").read_bytes() == before


def test_mismatched_sampler_steps_or_scale_raise_a_named_error(distilled):
    gen = SemanticGenerator.load(distilled["out"] / "distilled", device="cpu")
    cond = torch.zeros(1, 36, 16, 32)
    for bad in (SamplingSettings(sampler="respaced", steps=2), SamplingSettings(sampler="ddim", steps=2),
                SamplingSettings(sampler="ancestral"), SamplingSettings(sampler="distilled", steps=4),
                SamplingSettings(sampler="distilled", steps=2, guidance_scale=3.0)):
        with pytest.raises(DistilledSamplerError):
            gen.generate(cond, bad)
    ordinary = SemanticGenerator.load(distilled["teacher"], device="cpu")
    with pytest.raises(DistilledSamplerError, match="gesco train distill"):
        ordinary.generate(cond, SamplingSettings(sampler="distilled", steps=2))
    assert issubclass(DistilledSamplerError, GescoInputError)


# ------------------------------------------------------------------ registration and cards
def test_distilled_sampler_is_registered_apart_from_the_guided_ones():
    assert "distilled" not in SAMPLERS
    assert network_evaluations("distilled", 8, guided=True) == (8, 1)  # guidance folded: one pass per step
    calls = []

    def student(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x), None

    out = sample(student, FULL, (2, 1, 2, 2), sampler="distilled", steps=4, generator=torch.Generator().manual_seed(0))
    assert calls == [999, 749, 499, 249] and out.shape == (2, 1, 2, 2) and bool(torch.isfinite(out).all())
    with pytest.raises(GescoInputError):
        sample(student, FULL, (2, 1, 2, 2), sampler="distilled", steps=None)


def test_ordinary_cards_are_unchanged_and_bad_distilled_records_refused(tiny_unet_config):
    card = ModelCard(unet=tiny_unet_config, diffusion=DiffusionConfig())
    assert "distilled" not in card.to_dict() and ModelCard.from_dict(card.to_dict()).distilled is None
    bad = {**card.to_dict(), "distilled": {"steps": 8, "guidance_scale": 2.0, "parametrisation": "score", "teacher": "x"}}
    with pytest.raises(CheckpointError, match="parametrisation"):
        ModelCard.from_dict(bad)
    with pytest.raises(CheckpointError, match="distilled"):
        ModelCard.from_dict({**card.to_dict(), "distilled": {"steps": 8}})


def test_round_plan_and_config_checks(tiny_unet_config):
    card = ModelCard(unet=tiny_unet_config, diffusion=DiffusionConfig())
    plans = plan_rounds(DistillConfig(teacher="t"), card)
    assert [(p.index, p.kind, p.teacher_steps, p.student_steps) for p in plans] == [
        (0, "guidance", 64, 64), (1, "halve", 64, 32), (2, "halve", 32, 16), (3, "halve", 16, 8)]
    assert plans[-1].stem == "round3-8steps"
    assert [p.kind for p in plan_rounds(DistillConfig(teacher="t", guidance_round_steps=0), card)] == ["halve"] * 3
    with pytest.raises(GescoInputError):
        plan_rounds(DistillConfig(teacher="t", base_steps=12, rounds=3), card)
    student = ModelCard(unet=tiny_unet_config, diffusion=DiffusionConfig(),
                        distilled={"steps": 16, "guidance_scale": 2.0, "parametrisation": "v", "teacher": "t"})
    assert [(p.teacher_steps, p.student_steps) for p in plan_rounds(DistillConfig(teacher="s", rounds=1), student)] == [(16, 8)]
    with pytest.raises(GescoInputError):
        plan_rounds(DistillConfig(teacher="s", rounds=1, parametrisation="x0"), student)
    with pytest.raises(GescoInputError):
        DistillConfig().validate()  # no teacher
    with pytest.raises(GescoInputError):
        DistillConfig(teacher="t", parametrisation="eps").validate()


def test_step_batches_are_the_same_from_workers():
    from gesco.data.synthetic import SyntheticScenes
    from gesco.semantics.classes import get_class_space

    source = StepScenes(SyntheticScenes(size=16, height=16, width=32), get_class_space("cityscapes"), 2, round_index=1)
    here = list(step_batches(source, 3, 5))
    there = list(step_batches(source, 3, 5, num_workers=1))
    assert len(here) == len(there) == 2
    for a, b in zip(here, there):
        assert all(torch.equal(a[k], b[k]) for k in ("image", "cond", "has_edges")) and a["cond"].dtype == torch.float32
    assert not torch.equal(here[0]["image"], here[1]["image"])


# ------------------------------------------------------------------ guidance-only students (eps, every t)
def test_eps_student_loss_with_snr_weighting_is_the_epsilon_mse():
    g = torch.Generator().manual_seed(5)
    x0 = torch.rand(3, 3, 4, 4, generator=g) * 2 - 1
    t = torch.tensor([999, 500, 3])
    a = torch.tensor([_coef(int(i))[0] for i in t]).view(-1, 1, 1, 1).float()
    s = torch.tensor([_coef(int(i))[1] for i in t]).view(-1, 1, 1, 1).float()
    z = a * x0 + s * torch.randn(x0.shape, generator=g)
    eps_teacher, eps_student = torch.randn(x0.shape, generator=g), torch.randn(x0.shape, generator=g)
    target = prediction_to_x0(eps_teacher, z, a, s, "eps")  # the teacher's unclamped x_hat
    out = distillation_loss(eps_student, z, a, s, target, "eps", "snr")["loss"]
    want = ((eps_student - eps_teacher) ** 2).mean(dim=(1, 2, 3))
    assert torch.allclose(out, want, rtol=1e-3), (out, want)


def test_guidance_only_config_checks(tiny_unet_config):
    ok = dict(teacher="t", parametrisation="eps", rounds=0, base_steps=1000, loss_weighting="snr", clip_teacher=False)
    DistillConfig(**ok).validate()
    for bad in ({"rounds": 1}, {"guidance_round_steps": 0}, {"loss_weighting": "truncated-snr"}, {"clip_teacher": True}):
        with pytest.raises(GescoInputError):
            DistillConfig(**{**ok, **bad}).validate()
    card = ModelCard(unet=tiny_unet_config, diffusion=DiffusionConfig())
    assert [(p.kind, p.teacher_steps) for p in plan_rounds(DistillConfig(**ok), card)] == [("guidance", 1000)]
    with pytest.raises(GescoInputError, match="base_steps=1000"):
        plan_rounds(DistillConfig(**{**ok, "base_steps": 64}), card)


@pytest.fixture
def guidance_student(tmp_path, teacher, tiny_unet_config):
    """``gesco train distill`` on the tiny teacher with the guidance-only settings (as the shipped config)."""
    path = _teacher_checkpoint(tmp_path, teacher, tiny_unet_config)
    out = tmp_path / "distill-g"
    config = Path(__file__).resolve().parents[2] / "configs" / "distill_guidance_synthetic_64x128.yaml"
    args = ["train", "distill", "--config", str(config), "--no-progress",
            "--set", f"teacher={path}", "--set", f"out_dir={out}", "--set", "guidance_round_steps=3",
            "--set", "batch_size=2", "--set", "noise_draws=1", "--set", "train_size=8", "--set", "device=cpu",
            "--set", "log_every=1", "--set", "warmup_steps=0", "--set", "lr=1e-3"]
    assert main(args) == 0
    return {"teacher": path, "out": out}


def test_guidance_only_student_samples_with_ordinary_samplers_in_one_pass_per_step(guidance_student):
    card = read_card(guidance_student["out"] / "distilled")
    d = card.distilled
    assert d["parametrisation"] == "eps" and d["samplers"] == ["ddim", "dpmpp-2m", "dpmpp-2m-sde", "dpmpp-2m-sde-ode-mean"]
    assert d["guidance_scale"] == 2.0 and "timesteps" not in d and "Meng" in d["method"]
    assert ModelCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    log = [json.loads(line) for line in (guidance_student["out"] / "distill_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(math.isfinite(r["loss"]) for r in log)

    gen = SemanticGenerator.load(guidance_student["out"] / "distilled", device="cpu")
    calls = []
    gen.model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    cond = torch.zeros(2, 36, 16, 32)
    cond[:, 7] = 1
    for sampler, steps in (("dpmpp-2m-sde", 3), ("ddim", 2)):
        calls.clear()
        imgs = gen.generate(cond, SamplingSettings(sampler=sampler, steps=steps, seed=1))
        assert imgs.shape == (2, 3, 16, 32) and calls == [2] * steps  # one unguided forward of the batch per step
    for bad in (SamplingSettings(sampler="respaced", steps=4), SamplingSettings(sampler="ancestral"),
                SamplingSettings(sampler="distilled", steps=1000), SamplingSettings(sampler="ddim", steps=4, guidance_scale=1.0)):
        with pytest.raises(DistilledSamplerError):
            gen.generate(cond, bad)


def test_guidance_only_student_at_its_initial_weights_is_the_conditional_teacher(guidance_student, teacher):
    """The student starts as the teacher (eps_y): with zero training it samples like the teacher at guidance 1."""
    card = read_card(guidance_student["out"] / "distilled")
    student = SemanticGenerator(teacher, card, "cpu")  # the teacher's weights under the student's card
    plain = SemanticGenerator.load(guidance_student["teacher"], device="cpu")
    cond = torch.zeros(2, 36, 16, 32)
    cond[:, 7], cond[0, 7, :4], cond[0, 21, :4] = 1, 0, 1
    a = student.generate(cond, SamplingSettings(sampler="dpmpp-2m-sde", steps=3, seed=2, guidance_scale=2.0))
    b = plain.generate(cond, SamplingSettings(sampler="dpmpp-2m-sde", steps=3, seed=2, guidance_scale=1.0))
    assert torch.allclose(a, b, atol=1e-5)


def test_guidance_only_records_are_checked(tiny_unet_config):
    card = ModelCard(unet=tiny_unet_config, diffusion=DiffusionConfig())
    rec = {"steps": 1000, "guidance_scale": 2.0, "parametrisation": "eps", "teacher": "t", "samplers": ["dpmpp-2m-sde"]}
    assert ModelCard.from_dict({**card.to_dict(), "distilled": rec}).distilled == rec
    for bad in ({"samplers": ["respaced"]}, {"samplers": []}, {"parametrisation": "v"}):
        with pytest.raises(CheckpointError, match="samplers|guidance-only"):
            ModelCard.from_dict({**card.to_dict(), "distilled": {**rec, **bad}})


def test_student_init_continues_a_guidance_only_student(guidance_student, tmp_path, teacher, capsys):
    """``student_init``: the new student starts from the given student's weights (not the teacher's),
    and its card records where it started and the total steps."""
    first = guidance_student["out"] / "distilled"
    out = tmp_path / "distill-continued"
    config = Path(__file__).resolve().parents[2] / "configs" / "distill_guidance_synthetic_64x128.yaml"
    base = ["train", "distill", "--config", str(config), "--no-progress", "--set", f"teacher={guidance_student['teacher']}",
            "--set", "batch_size=2", "--set", "noise_draws=1", "--set", "train_size=8", "--set", "device=cpu",
            "--set", "log_every=1", "--set", "warmup_steps=0", "--set", "seed=1"]
    # at lr ~ 0 the continued student keeps the weights it started from: the first student's, not the teacher's
    args = [*base, "--set", f"out_dir={out}", "--set", "guidance_round_steps=2", "--set", "lr=1e-12",
            "--set", f"student_init={first}"]
    assert main(args) == 0
    card = read_card(out / "distilled")
    assert card.training["student_init"]["path"] == str(first) and card.training["student_init"]["steps"] == 3
    assert card.training["steps"] == 2 and card.training["total_steps"] == 5
    start, _ = load_checkpoint(first)
    cont, _ = load_checkpoint(out / "distilled")
    moved_from_teacher = max((a - b).abs().max().item() for a, b in zip(start.state_dict().values(),
                                                                          teacher.state_dict().values(), strict=True))
    kept = max((a - b).abs().max().item() for a, b in zip(cont.state_dict().values(), start.state_dict().values(),
                                                          strict=True))
    assert moved_from_teacher > 1e-4 and kept < 1e-6

    # refused: an ordinary checkpoint, or a student of another guidance scale
    for init, sets, words in ((guidance_student["teacher"], [], "not a guidance-only student"),
                              (first, ["--set", "guidance_scale=3.0"], "guidance scale")):
        code = main([*base, "--set", f"out_dir={tmp_path / 'refused'}", "--set", "guidance_round_steps=1",
                     "--set", f"student_init={init}", *sets])
        assert code == 2 and words in capsys.readouterr().err
        assert not (tmp_path / "refused" / "distilled.json").exists()
    with pytest.raises(GescoInputError, match="student_init continues a guidance-only student"):
        DistillConfig(teacher="t", student_init=str(first)).validate()
