"""End-to-end tests of ``gesco evaluate`` at a tiny size (random-weight models, 32x64, 3 scenes).

The numbers of random models mean nothing; these tests check that the evaluation runs
through the services' stages, writes every file, keeps missing rows visible, resumes
without redoing work, refuses to mix settings, and that its numbers are the metrics'
own numbers (the real row's mIoU is the segmenter's mIoU on the real scenes).
"""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
import torch

from gesco.cli import main
from gesco.data.synthetic import generate_scene, split_seed
from gesco.data.transforms import image_to_tensor
from gesco.defaults import DEFAULT_SAMPLER, DEFAULT_STEPS
from gesco.diffusion.checkpoint import ModelCard, save_checkpoint
from gesco.diffusion.gaussian import DiffusionConfig
from gesco.diffusion.pipeline import SemanticGenerator
from gesco.diffusion.unet import SpadeUNet, UNetConfig
from gesco.errors import GescoInputError
from gesco.evaluate.config import EvalConfig
from gesco.evaluate.methods import equal_use_factor, parse_checkpoint_overrides, select_methods
from gesco.evaluate.metrics import colour_errors, mean_iou
from gesco.evaluate.plan import plan_rows
from gesco.evaluate.runner import run_evaluation
from gesco.evaluate.sampler_study import run_sampler_study, sampler_rows
from gesco.evaluate.store import ResultStore
from gesco.segment import Segmenter
from gesco.segment.checkpoint import SegmenterCard
from gesco.segment.checkpoint import save_checkpoint as save_segmenter
from gesco.segment.model import SegmenterConfig, SegmenterNet
from gesco.semantics.classes import CITYSCAPES

H, W = 32, 64  # LPIPS needs sides >= 31
SCENES = 3
METHODS = "real,full-image,ours,no-fds,no-noisy,equal-uses"


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny diffusion checkpoint (role ``ours`` only) and a tiny segmenter checkpoint, random weights."""
    root = tmp_path_factory.mktemp("eval-assets")
    ckpts = root / "checkpoints"
    torch.manual_seed(0)
    # no attention level: at 32x64 it would cost more than the rest of the network
    unet = UNetConfig(label_channels=36, base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(),
                      head_channels=8, spade_hidden=8, num_groups=4)
    save_checkpoint(ckpts / "diffusion-synthetic-64x128", SpadeUNet(unet),
                    ModelCard(unet=unet, diffusion=DiffusionConfig(num_timesteps=50), resolution=(H, W)))
    seg_cfg = SegmenterConfig(num_classes=35, patch=2, widths=(4, 8), stem_convs=1, context_dilations=(1,))
    seg = SegmenterNet(seg_cfg).eval()
    save_segmenter(root / "segmenter", seg, SegmenterCard(model=seg_cfg, resolution=(H, W)))
    return {"checkpoints": ckpts, "segmenter": root / "segmenter"}


def _argv(out, assets, *extra):
    return ["evaluate", "--scenes", str(SCENES), "--psnr", "10", "100", "--methods", METHODS, "--steps", "2",
            "--sampler", "ddim", "--segmenter", str(assets["segmenter"]), "--device", "cpu", "--batch-size", "2",
            "--grid-scenes", "1", "--no-progress", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def first_run(assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("GESCO_CHECKPOINT_DIR", str(assets["checkpoints"]))
    try:
        assert main(_argv(out, assets)) == 0
    finally:
        mp.undo()
    return out


def test_files_tables_and_missing_row(first_run):
    out = first_run
    for name in ("report.md", "results.csv", "results.json", "results.sqlite", "sample_grid_scene000.png",
                 "plots/miou_vs_psnr.png", "plots/lpips_vs_psnr.png", "plots/fd_vs_psnr.png", "plots/ssim_vs_psnr.png",
                 "plots/mean_colour_error_vs_psnr.png", "plots/class_colour_error_vs_psnr.png", "colour_per_class.csv",
                 "samples/ours/psnr10/scene000.png", "samples/label/scene000.png"):
        assert (out / name).is_file(), name
    md = (out / "report.md").read_text()
    for title in ("Table 1: mIoU", "Table 2: LPIPS", "Table 3: Frechet distance, FD-AlexNet-relu5 (substitute; not FID)",
                  "Table 5: ablation at PSNR", "Bits and channel uses", "Equal channel uses", "Missing rows",
                  "Mean colour error", "Class colour error", "Per-class colour error"):
        assert title in md, title
    assert "| FID" not in md  # the substitute is never called FID
    for label in ("Real images (ceiling)", "Full image (pixels through the channel)", "Our method (noisy training + FDS)",
                  "No FDS at inference", "No noisy training", "Our method at equal channel uses (maps downsampled)"):
        assert f"| {label} |" in md, label
    # the missing row is listed with the command that makes its checkpoint, in the tables too
    assert "noisy.enabled=false" in md
    table1 = md.split("## Table 1")[1].split("## Table 2")[0]
    assert "| No noisy training | — | missing | missing |" in table1
    # the command that made it, with every non-default option
    assert "gesco evaluate --scenes 3 --psnr 10 100 --methods real,full-image,ours,no-fds,no-noisy,equal-uses" in md
    table5 = md.split("## Table 5")[1].split("## Bits")[0]
    assert "| ✓ | ✓ | ✓ | Our method (noisy training + FDS) |" in table5
    assert "| ✓ | ✗ | ✗ | No noisy training | missing | missing | missing | missing | missing |" in table5
    colour = md.split("## Mean colour error")[1].split("## Class colour error")[0]
    assert "| Real images (ceiling) | 0 | 0.00 ± 0.00 | 0.00 ± 0.00 |" in colour
    assert "| No noisy training | — | missing | missing |" in colour
    assert "Colour errors missing" not in md  # every stored image has them
    per_class = md.split("## Per-class colour error")[1].split("## Notes")[0]
    assert "### PSNR 100 dB" in per_class and "### PSNR 10 dB" in per_class
    assert "| road |" in per_class and "| Real images (ceiling) |" in per_class.split("\n|---")[0]


def test_numbers_are_in_range(first_run):
    rows = list(csv.DictReader(open(first_run / "results.csv")))
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["row"] for r in ok} == {"real", "full-image", "ours", "no-fds", "equal-uses"}
    assert {r["row"] for r in rows if r["status"] == "missing"} == {"no-noisy"}
    for r in ok:
        assert int(r["n"]) == SCENES
        assert 0.0 <= float(r["miou_mean"]) <= 1.0 and 0.0 <= float(r["miou_pooled"]) <= 1.0
        assert float(r["lpips_mean"]) >= 0.0 and -1.0 <= float(r["ssim_mean"]) <= 1.0
        assert float(r["fd"]) >= 0.0
    by = {(r["row"], r["psnr"]): r for r in ok}
    real = by[("real", "")]
    assert float(real["lpips_mean"]) == pytest.approx(0.0, abs=1e-6)
    assert float(real["ssim_mean"]) == pytest.approx(1.0, abs=1e-6)
    assert float(real["fd"]) == pytest.approx(0.0, abs=1e-3)
    # the real row is the sent image: colour errors 0, computed (its per-class entries exist), not written in
    assert float(real["mean_colour_error_mean"]) == 0.0 and float(real["class_colour_error_mean"]) == 0.0
    for r in ok:
        assert int(r["colour_n"]) == SCENES
        assert float(r["mean_colour_error_mean"]) >= 0.0 and float(r["class_colour_error_mean"]) >= 0.0
    # full image: 3 channel uses per pixel, 24 raw bits per pixel; PSNR 100 dB is nearly lossless
    full = by[("full-image", "100.0")]
    assert float(full["channel_uses_per_pixel"]) == 3.0 and float(full["total_bits"]) == 24 * H * W
    assert float(full["ssim_mean"]) > 0.99
    assert float(full["mean_colour_error_mean"]) < 1.0 and float(full["class_colour_error_mean"]) < 1.0
    assert float(by[("full-image", "10.0")]["ssim_mean"]) < float(full["ssim_mean"])
    # semantic frames: fewer bits than the raw image; one channel use per map pixel unless downsampled
    ours, equal = by[("ours", "10.0")], by[("equal-uses", "10.0")]
    assert 0 < float(ours["total_bits"]) < 24 * H * W
    assert float(ours["channel_uses_per_pixel"]) > 3.0  # > 3 maps sent at full resolution
    assert float(equal["channel_uses_per_pixel"]) <= 3.0 and float(equal["downsample"]) >= 2.0
    data = json.loads((first_run / "results.json").read_text())
    assert data["plan"]["feature_space"]["key"] == "fd-alexnet"
    real_json = next(r for r in data["results"] if r["row"] == "real")
    assert "road" in real_json["class_colour"]
    assert all(c["mean"] == 0.0 and c["n"] >= 1 for c in real_json["class_colour"].values())
    per_class = list(csv.DictReader(open(first_run / "colour_per_class.csv")))
    assert {(r["row"], r["class"]) for r in per_class} >= {("real", "road"), ("ours", "road")}
    assert any(r["row"] == "no-noisy" and r["status"] == "missing" for r in data["results"])


def test_bits_depend_on_the_scene_only(first_run):
    """The same scene's frame has the same size in every row and at every PSNR (the id has a fixed length)."""
    with ResultStore(first_run / "results.sqlite") as store:
        bits = {}
        for row in ("ours", "no-fds"):  # the rows of the tiny run that send the same frame
            for psnr in (10.0, 100.0):
                idx, metrics, _ = store.load(row, psnr, SCENES)
                bits[(row, psnr)] = [m["total_bits"] for m in metrics]
    assert len(bits[("ours", 10.0)]) == SCENES and len(set(map(tuple, bits.values()))) == 1, bits


def test_real_row_miou_is_the_segmenters_miou(first_run, assets):
    seg = Segmenter.load(assets["segmenter"])
    scenes = [generate_scene(split_seed("test", i), H, W) for i in range(SCENES)]
    images = torch.stack([image_to_tensor(s.image) for s in scenes])
    predicted = seg.predict(images)
    per_image = [mean_iou(predicted[i], torch.from_numpy(s.label.astype(np.int64)), CITYSCAPES).miou
                 for i, s in enumerate(scenes)]
    pooled = mean_iou(predicted, torch.from_numpy(np.stack([s.label for s in scenes]).astype(np.int64)), CITYSCAPES).miou
    real = next(r for r in csv.DictReader(open(first_run / "results.csv")) if r["row"] == "real")
    assert float(real["miou_mean"]) == pytest.approx(float(np.mean(per_image)), abs=1e-9)
    assert float(real["miou_pooled"]) == pytest.approx(pooled, abs=1e-9)


def test_stored_colour_errors_are_the_metric_on_the_generated_image(first_run):
    """The stored colour errors of a generated image are ``colour_errors`` of it (its saved PNG) against the scene."""
    scene = generate_scene(split_seed("test", 0), H, W)
    png = cv2.imread(str(first_run / "samples" / "ours" / "psnr10" / "scene000.png"), cv2.IMREAD_COLOR)[:, :, ::-1]
    expected = colour_errors(np.ascontiguousarray(png), scene.image, scene.label.astype(np.int64)).records()[0]
    with ResultStore(first_run / "results.sqlite") as store:
        _, metrics, _ = store.load("ours", 10.0, 1)
    stored = metrics[0]
    assert stored["mean_colour_error"] == pytest.approx(expected["mean_colour_error"], abs=0.9)  # PNG: 8-bit rounding
    assert stored["class_colour_error"] == pytest.approx(expected["class_colour_error"], abs=0.9)
    assert set(stored["class_colour"]) == set(expected["class_colour"])


def test_report_of_a_store_without_colour_errors(first_run, tmp_path):
    """Results stored before the colour errors existed still load: n/a (or ``(n=k)``), a note, no crash."""
    import shutil
    import sqlite3

    out = tmp_path / "old"
    shutil.copytree(first_run, out)
    db = sqlite3.connect(str(out / "results.sqlite"))
    with db:
        for row, psnr, scene, m in db.execute("SELECT row, psnr, scene, metrics FROM results").fetchall():
            if row == "ours" or (row == "full-image" and scene == 0):
                old = {k: v for k, v in json.loads(m).items()
                       if k not in ("mean_colour_error", "class_colour_error", "class_colour")}
                db.execute("UPDATE results SET metrics = ? WHERE row = ? AND psnr = ? AND scene = ?",
                           (json.dumps(old), row, psnr, scene))
    db.close()
    assert main(["evaluate", "--report-only", "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    colour = md.split("## Mean colour error")[1].split("## Class colour error")[0]
    ours = next(line for line in colour.splitlines() if line.startswith("| Our method (noisy training + FDS) |"))
    assert ours.endswith("| n/a | n/a |")  # after its channel uses per pixel
    full = next(line for line in colour.splitlines() if line.startswith("| Full image"))
    assert full.count(f"(n={SCENES - 1})") == 2  # the scenes that have the value
    assert "Colour errors missing" in md
    per_class = md.split("## Per-class colour error")[1].split("### PSNR 10 dB")[0]
    road = next(line for line in per_class.splitlines() if line.startswith("| road |"))
    assert f"| road | {SCENES} |" in road and f"(n={SCENES - 1})" in road and "| n/a |" in road
    rows = {(r["row"], r["psnr"]): r for r in csv.DictReader(open(out / "results.csv"))}
    assert rows[("ours", "10.0")]["mean_colour_error_mean"] == "" and rows[("ours", "10.0")]["colour_n"] == "0"
    assert rows[("real", "")]["mean_colour_error_mean"] == "0.0"


def test_resume_skips_done_work_and_extends(first_run, assets, monkeypatch, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(first_run, out)
    monkeypatch.setenv("GESCO_CHECKPOINT_DIR", str(assets["checkpoints"]))
    config = EvalConfig(out=out, scenes=SCENES, psnrs=(10.0, 100.0), methods=tuple(METHODS.split(",")), sampler="ddim",
                        steps=2, segmenter=str(assets["segmenter"]), device="cpu", batch_size=2, grid_scenes=1,
                        progress=False)

    def no_sampling(*args, **kwargs):
        raise AssertionError("a resumed evaluation must not sample finished images again")

    with monkeypatch.context() as m:
        m.setattr(SemanticGenerator, "generate", no_sampling)
        again = run_evaluation(config)
    assert again.units_run == 0 and again.units_skipped == 1 * SCENES + 4 * 2 * SCENES
    # one more scene: only that scene's images are made (real + 4 rows x 2 PSNRs)
    config.scenes = SCENES + 1
    more = run_evaluation(config)
    assert more.units_run == 1 + 4 * 2
    with ResultStore(out / "results.sqlite") as store:
        assert store.done("ours", 10.0) == set(range(SCENES + 1))


def test_refuses_to_mix_settings_and_rebuilds_report(first_run, assets, monkeypatch, capsys):
    monkeypatch.setenv("GESCO_CHECKPOINT_DIR", str(assets["checkpoints"]))
    assert main(_argv(first_run, assets, "--seed", "1")) == 2
    assert "other settings" in capsys.readouterr().err
    (first_run / "report.md").unlink()
    assert main(["evaluate", "--report-only", "--out", str(first_run)]) == 0
    assert "Table 1: mIoU" in (first_run / "report.md").read_text()


def test_no_run_reports_the_stored_results_of_a_wider_plan(first_run, assets, monkeypatch, capsys, tmp_path):
    """``--no-run`` evaluates nothing and reports partial cells as partial, not as finished."""
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(first_run, out)
    monkeypatch.setenv("GESCO_CHECKPOINT_DIR", str(assets["checkpoints"]))
    with ResultStore(out / "results.sqlite") as store:
        before = store.count()

    def no_sampling(*args, **kwargs):
        raise AssertionError("--no-run must not sample")

    monkeypatch.setattr(SemanticGenerator, "generate", no_sampling)
    argv = _argv(out, assets, "--no-run")
    argv[argv.index("--scenes") + 1] = str(SCENES + 2)  # a plan wider than what is stored
    argv[argv.index("--psnr") + 1:argv.index("--psnr") + 3] = ["10", "100", "5"]
    assert main(argv) == 0
    assert "evaluated nothing" in capsys.readouterr().out
    with ResultStore(out / "results.sqlite") as store:
        assert store.count() == before
        assert store.get_meta("commands")[-1].endswith("--no-run")
    md = (out / "report.md").read_text()
    assert f"(n={SCENES})" in md  # the stored scenes, marked as fewer than planned
    assert "not run" in md  # PSNR 5 was never evaluated
    data = json.loads((out / "results.json").read_text())
    ours10 = next(r for r in data["results"] if r["row"] == "ours" and r["psnr"] == 10.0)
    assert ours10["n"] == SCENES and ours10["n_planned"] == SCENES + 2
    # a mistyped --out holds nothing to report: a clear error, and no empty store left behind
    empty = tmp_path / "typo"
    assert main(_argv(empty, assets, "--no-run")) == 2
    assert "no stored results" in capsys.readouterr().err and not empty.exists()


def test_a_run_reports_its_own_plan_when_another_process_records_one(first_run, assets, monkeypatch, tmp_path):
    """Two processes sharing a store: each run's report covers its own plan, not the last one recorded."""
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(first_run, out)
    monkeypatch.setenv("GESCO_CHECKPOINT_DIR", str(assets["checkpoints"]))
    with ResultStore(out / "results.sqlite") as store:
        other = {**store.get_meta("plan"), "psnrs": [100.0]}  # what a concurrent run at 100 dB only records
    real_add = ResultStore.add

    def add_while_another_run_starts(self, results):
        real_add(self, results)
        self.set_meta("plan", other)

    monkeypatch.setattr(ResultStore, "add", add_while_another_run_starts)
    config = EvalConfig(out=out, scenes=SCENES + 1, psnrs=(10.0, 100.0), methods=("real", "ours"), sampler="ddim",
                        steps=2, segmenter=str(assets["segmenter"]), device="cpu", batch_size=2, grid_scenes=0,
                        progress=False)
    assert run_evaluation(config).units_run == 1 + 2
    data = json.loads((out / "results.json").read_text())
    assert sorted({r["psnr"] for r in data["results"] if r["row"] == "ours"}) == [10.0, 100.0]


def test_sampler_study_end_to_end(assets, monkeypatch, tmp_path):
    monkeypatch.setenv("GESCO_CHECKPOINT_DIR", str(assets["checkpoints"]))
    config = EvalConfig(out=tmp_path / "samplers", scenes=2, psnrs=(10.0,), segmenter=str(assets["segmenter"]),
                        device="cpu", batch_size=2, grid_scenes=0, progress=False)
    rows = sampler_rows(samplers=("ddim", "dpmpp-2m", "unguided-ddim"), steps=(2,))
    from gesco.diffusion.pipeline import SemanticGenerator

    scales, generate = set(), SemanticGenerator.generate

    def spy(self, cond, settings, progress=None):
        scales.update((s.sampler, s.steps, s.guidance_scale) for s in (settings if isinstance(settings, list) else [settings]))
        return generate(self, cond, settings, progress)

    monkeypatch.setattr(SemanticGenerator, "generate", spy)
    outcome = run_sampler_study(config, rows)
    assert outcome.units_run == 2 + 4 * 2
    data = json.loads((tmp_path / "samplers" / "results.json").read_text())
    nfe = {r["row"]: r["nfe"] for r in data["results"]}
    assert nfe["ancestral-1000"] == 50 and nfe["ddim-2"] == 2 and nfe["dpmpp-2m-2"] == 2  # the checkpoint's T = 50
    passes = {r["row"]: r["passes"] for r in data["results"]}
    assert passes["ddim-2"] == 4 and passes["unguided-ddim-2"] == 2
    assert {(2, 2.0), (2, 1.0)} <= {(n, g) for s, n, g in scales if s == "ddim"}  # the unguided row samples at scale 1
    assert {g for s, n, g in scales if s != "ddim" or n != 2} == {2.0}
    assert "reason" in data["choice"]
    md = (tmp_path / "samplers" / "report.md").read_text()
    assert "## Choice" in md and "| ancestral | 50 | 50 |" in md
    assert (tmp_path / "samplers" / "plots" / "samplers_miou.png").is_file()


def test_equal_use_factor():
    # 12 maps at 64x128 need k = 2 (12 * 32 * 64 = 3 * 64 * 128); 13 maps need k = 3
    assert equal_use_factor(12, 64, 128) == 2
    assert equal_use_factor(13, 64, 128) == 3
    assert equal_use_factor(3, 64, 128) == 1
    for n in range(1, 37):
        k = equal_use_factor(n, 33, 65)
        assert n * -(-33 // k) * -(-65 // k) <= 3 * 33 * 65
        assert k == 1 or n * -(-33 // (k - 1)) * -(-65 // (k - 1)) > 3 * 33 * 65
    with pytest.raises(GescoInputError):
        equal_use_factor(0, 64, 128)


def test_method_and_checkpoint_arguments():
    assert parse_checkpoint_overrides(["clean=/x/y"]) == {"clean": "/x/y"}
    with pytest.raises(GescoInputError, match="ROLE=PATH"):
        parse_checkpoint_overrides(["clean"])
    with pytest.raises(GescoInputError, match="unknown checkpoint role"):
        parse_checkpoint_overrides(["best=/x"])
    with pytest.raises(GescoInputError, match="unknown method"):
        select_methods(["ours", "oracle"])
    assert [m.key for m in select_methods(["ours"])] == ["real", "ours"]  # the real row is always evaluated


def test_table5_warns_about_unequal_training_budgets(first_run):
    from gesco.evaluate.report.tables import budget_warning

    md = (first_run / "report.md").read_text()
    assert "Unequal training budgets" not in md  # one checkpoint: nothing to compare

    def row(key, role, steps, table5=True):
        return {"status": "ok", "checkpoint": f"checkpoints/{role}", "checkpoint_training": {"steps": steps},
                "method": {"key": key, "checkpoint": role, "table5": table5}}

    equal = {"rows": [row("ours", "ours", 1100), row("no-noisy", "clean", 1100), row("fds-inference-only", "nofds", 1100, False)]}
    assert budget_warning(equal) == ""
    unequal = {"rows": [row("ours", "ours", 2400), row("no-noisy", "clean", 1100)]}
    warning = budget_warning(unequal)
    assert "Unequal training budgets" in warning and "`ours` 2400" in warning and "`clean` 1100" in warning


def test_sampler_rows_name_every_few_step_sampler_and_refuse_unknown_ones():
    keys = [r.key for r in sampler_rows(steps=(10,), reference=False)]
    assert keys == ["real", "respaced-10", "ddim-10", "dpmpp-2m-10", "dpmpp-2m-sde-10"]
    with pytest.raises(GescoInputError, match="unknown few-step samplers"):
        sampler_rows(samplers=("ancestral",))
    with pytest.raises(GescoInputError, match="unknown few-step samplers"):
        sampler_rows(samplers=("euler",))


def test_the_study_samplers_come_from_the_registry():
    """A guided few-step sampler declared in the registry joins the study's default list; the
    full chain (the reference row), distilled-model samplers and bound variants do not."""
    from dataclasses import replace as dc_replace

    from gesco.evaluate.sampler_study import FEW_STEP_SAMPLERS
    from gesco.sampler_specs import SPEC_BY_NAME, SPECS, few_step_samplers

    euler = dc_replace(SPEC_BY_NAME["ddim"], name="euler", function="euler", options=())
    assert few_step_samplers(SPECS + (euler,)) == ("respaced", "ddim", "dpmpp-2m", "dpmpp-2m-sde", "euler")
    assert FEW_STEP_SAMPLERS == few_step_samplers()
    assert "dpmpp-2m-sde-ode-mean" in SPEC_BY_NAME and "distilled" in SPEC_BY_NAME  # left out by the rule


def test_student_rows_use_the_student_role_and_cost_one_pass_per_step(assets, monkeypatch, tmp_path):
    """``student-<sampler>`` rows sample the guidance-only student: steps x 1 passes, not steps x 2."""
    rows = sampler_rows(samplers=("dpmpp-2m-sde", "student-dpmpp-2m-sde", "unguided-dpmpp-2m-sde"), steps=(3,),
                        reference=False)
    assert [(r.key, r.checkpoint, r.sampler, r.guidance_scale) for r in rows[1:]] == [
        ("dpmpp-2m-sde-3", "ours", "dpmpp-2m-sde", None), ("student-dpmpp-2m-sde-3", "student", "dpmpp-2m-sde", None),
        ("unguided-dpmpp-2m-sde-3", "ours", "dpmpp-2m-sde", 1.0)]
    assert "guidance_scale" not in rows[1].to_dict() and rows[3].to_dict()["guidance_scale"] == 1.0
    with pytest.raises(GescoInputError, match="student-dpmpp-2m-sde"):
        sampler_rows(samplers=("student-respaced",))  # the student has no trained variance

    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    for suffix in (".safetensors", ".json"):
        (ckpts / f"diffusion-synthetic-64x128{suffix}").write_bytes(
            (assets["checkpoints"] / f"diffusion-synthetic-64x128{suffix}").read_bytes())
    card = json.loads((ckpts / "diffusion-synthetic-64x128.json").read_text())
    card["distilled"] = {"steps": 50, "guidance_scale": 2.0, "parametrisation": "eps", "teacher": "t",
                         "samplers": ["ddim", "dpmpp-2m", "dpmpp-2m-sde"]}
    (ckpts / "diffusion-synthetic-64x128-student-meanfit.safetensors").write_bytes(
        (ckpts / "diffusion-synthetic-64x128.safetensors").read_bytes())
    (ckpts / "diffusion-synthetic-64x128-student-meanfit.json").write_text(json.dumps(card))
    monkeypatch.setenv("GESCO_CHECKPOINT_DIR", str(ckpts))
    plans = {p.method.key: p for p in plan_rows(rows, EvalConfig(out=tmp_path / "o", guidance_scale=2.0))}
    assert (plans["dpmpp-2m-sde-3"].nfe, plans["dpmpp-2m-sde-3"].passes) == (3, 6)
    assert (plans["student-dpmpp-2m-sde-3"].nfe, plans["student-dpmpp-2m-sde-3"].passes) == (3, 3)
    assert (plans["unguided-dpmpp-2m-sde-3"].nfe, plans["unguided-dpmpp-2m-sde-3"].passes) == (3, 3)
    assert plans["student-dpmpp-2m-sde-3"].checkpoint.endswith("diffusion-synthetic-64x128-student-meanfit")
    # the channel study's ours-fast row: the receiver's default (the student at the default sampler), whatever
    # the run's --sampler / --steps (they set the guided rows)
    ours, fast = plan_rows(select_methods(["ours-fast", "ours"]), EvalConfig(out=tmp_path / "o", sampler="ddim",
                                                                             steps=5))[1:]
    assert (fast.method.key, fast.sampler, fast.steps) == ("ours-fast", DEFAULT_SAMPLER, DEFAULT_STEPS)
    assert fast.checkpoint.endswith("diffusion-synthetic-64x128-student-meanfit") and fast.passes == DEFAULT_STEPS
    assert (ours.sampler, ours.steps, ours.passes) == ("ddim", 5, 10)


def test_validation_split_and_edge_modes(assets, monkeypatch, tmp_path, capsys):
    """``--split validation --edges ...`` evaluates the validation scenes, sends the edge map the
    flag names (``maps`` counts it), records both in the plan and refuses to mix edge modes."""
    monkeypatch.setenv("GESCO_CHECKPOINT_DIR", str(assets["checkpoints"]))
    maps = {}
    for edges in ("derived", "none"):  # "uploaded" is the default every other test runs
        out = tmp_path / edges
        argv = ["evaluate", "--split", "validation", "--edges", edges, "--scenes", "1", "--psnr", "100", "--methods",
                "real,ours", "--steps", "1", "--sampler", "ddim", "--segmenter", str(assets["segmenter"]),
                "--device", "cpu", "--grid-scenes", "0", "--no-progress", "--out", str(out)]
        assert main(argv) == 0
        with ResultStore(out / "results.sqlite") as store:
            plan = store.get_meta("plan")
            _, metrics, _ = store.load("ours", 100.0, 1)
        assert plan["split"] == "val" and plan["edges"] == edges
        maps[edges] = metrics[0]["maps"]
        assert "`val` split" in (out / "report.md").read_text()
    scene = generate_scene(split_seed("val", 0), H, W)
    from gesco.data.transforms import resize_labels
    classes = len(np.unique(resize_labels(scene.label, H, W)))
    assert maps == {"derived": classes + 1, "none": classes}
    # the same folder with another edge mode is refused, naming the setting
    assert main(argv[:4] + ["uploaded"] + argv[5:]) == 2
    assert "edges" in capsys.readouterr().err


def test_evaluation_splits_and_edges_are_checked(tmp_path):
    from gesco.commands.evaluate import resolve_split

    # choices on the validation split: the sampler study's default; the paper's tables: test
    assert [resolve_split(None, True), resolve_split(None, False)] == ["val", "test"]
    assert [resolve_split("validation", False), resolve_split("test", True)] == ["val", "test"]
    assert EvalConfig(out=tmp_path, split="validation").validate().split == "val"
    with pytest.raises(GescoInputError, match="unknown evaluation split 'train'"):
        EvalConfig(out=tmp_path, split="train").validate()
    with pytest.raises(GescoInputError, match="unknown edges 'gt'"):
        EvalConfig(out=tmp_path, edges="gt").validate()


def test_an_unknown_channel_is_refused_by_the_command_line(tmp_path, capsys):
    """``gesco evaluate --channel`` is checked when the flag is parsed (the declaration's
    ``FieldSpec.check`` over the channel models' names, as ``gesco send`` does): argparse's exit 2,
    the message names the setting and lists the models, and nothing is run or written."""
    from gesco.channel import CHANNELS

    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--channel", "rayleigh-typo", "--scenes", "1", "--out", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "argument --channel: channel must be one of " + ", ".join(sorted(CHANNELS)) + ", got 'rayleigh-typo'" in err
    assert not out.exists()


def test_mean_temperature_flag_reaches_the_rows_and_their_stored_meta(tmp_path):
    """``--mean-temperature`` (gesco.diffusion.samplers.scale_start_mean) sets every semantic row's tau and is part of
    what a stored row depends on (only when not 1, so stores made before it still resume); unset, each row takes its
    checkpoint card's recommendation; a value outside [0, 1] is refused naming the flag."""
    from gesco.diffusion.checkpoint import read_card
    from gesco.diffusion.pipeline import recommended_mean_temperature
    from gesco.evaluate.plan import row_meta

    methods = select_methods(["real", "ours-fast"])
    config = EvalConfig(out=tmp_path, mean_temperature=0.5).validate()
    real, fast = plan_rows(methods, config)
    assert real.mean_temperature is None and fast.mean_temperature == 0.5
    assert row_meta(fast, config)["mean_temperature"] == 0.5
    config = EvalConfig(out=tmp_path, mean_temperature=1.0).validate()
    assert "mean_temperature" not in row_meta(plan_rows(methods, config)[1], config)
    config = EvalConfig(out=tmp_path).validate()
    fast = plan_rows(methods, config)[1]
    assert fast.mean_temperature == recommended_mean_temperature(read_card(fast.checkpoint))
    for bad in (-0.5, 1.01, float("nan")):
        with pytest.raises(GescoInputError, match=r"--mean-temperature: mean temperature must be in \[0, 1\]"):
            EvalConfig(out=tmp_path, mean_temperature=bad).validate()
