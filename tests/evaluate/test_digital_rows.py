"""``gesco evaluate --methods digital`` at a tiny size: the digital rows run, count channel uses, show the cliff.

Random-weight models (the ``assets`` of test_evaluate); what is checked is the plumbing and
the digital numbers that do not depend on the models: at 100 dB every frame arrives (PNG
then returns the real image exactly), far below the lowest MCS's threshold every frame is
lost and the receiver shows grey; JPEG / WebP fit the 3 channel uses per pixel budget.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("sionna.phy", reason="the digital rows need the [sionna] extra (CI installs it)")

from test_evaluate import H, W, assets  # noqa: F401  (the tiny checkpoint and segmenter)

from gesco.cli import main
from gesco.digital.source import LOST_GREY
from gesco.evaluate.methods import DIGITAL_METHODS, expand_methods
from gesco.evaluate.store import ResultStore

SCENES = 1  # one scene keeps the module at ~25 s on an idle core (the PNG at -10 dB is 10 code blocks)


@pytest.fixture(scope="module")
def digital_run(assets, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("eval-digital") / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("GESCO_CHECKPOINT_DIR", str(assets["checkpoints"]))
    try:
        argv = ["evaluate", "--scenes", str(SCENES), "--psnr", "-10", "100", "--methods", "digital", "--steps", "2",
                "--sampler", "ddim", "--segmenter", str(assets["segmenter"]), "--device", "cpu", "--batch-size", "2",
                "--grid-scenes", "1", "--no-progress", "--out", str(out)]
        assert main(argv) == 0
    finally:
        mp.undo()
    return out


def _metrics(out, row, psnr):
    with ResultStore(out / "results.sqlite") as store:
        idx, metrics, _ = store.load(row, psnr, SCENES)
    assert idx == list(range(SCENES))
    return metrics


def test_alias_expands_to_the_comparison():
    assert expand_methods(("digital",)) == DIGITAL_METHODS
    assert expand_methods(("ours", "digital")) == ("ours",) + tuple(k for k in DIGITAL_METHODS if k != "ours")


def test_report_has_every_row_and_the_digital_section(digital_run):
    md = (digital_run / "report.md").read_text()
    assert "## Digital link" in md
    for label in ("Digital: JPEG at <= 3 uses/px (LDPC + QAM)", "Digital: PNG, lossless (LDPC + QAM)",
                  "Digital: lossless maps (LDPC + QAM) + generation", "Full image (pixels through the channel)",
                  "Our method (noisy training + FDS)"):
        assert f"| {label} |" in md, label
    section = md.split("## Digital link")[1]
    assert "lost 100 %" in section and "lost 0 %" in section and "QPSK r=0.200" in section
    results = json.loads((digital_run / "results.json").read_text())["results"]
    assert {"digital-jpeg", "digital-webp", "digital-png", "digital-maps"} <= {r["row"] for r in results}
    png100 = next(r for r in results if r["row"] == "digital-png" and r["psnr"] == 100.0)
    assert png100["lost"] == 0.0 and png100["channel_uses_per_pixel"] > 3.0


def test_at_100_db_everything_arrives_and_png_is_exact(digital_run):
    for row in ("digital-jpeg", "digital-webp", "digital-png", "digital-maps"):
        for m in _metrics(digital_run, row, 100.0):
            assert m["lost"] == 0 and m["bit_errors"] == 0, row
            assert m["channel_uses"] > 0 and m["channel_uses_per_pixel"] == pytest.approx(m["channel_uses"] / (H * W))
            if row in ("digital-jpeg", "digital-webp"):
                assert m["channel_uses_per_pixel"] <= 3.0 and 1 <= m["quality"] <= 100
    for m in _metrics(digital_run, "digital-png", 100.0):
        assert m["lpips"] == pytest.approx(0.0, abs=1e-6) and m["mean_colour_error"] == pytest.approx(0.0, abs=1e-6)
    # the semantic frame needs far fewer channel uses than the analog maps (one real symbol per map pixel)
    maps = np.mean([m["channel_uses_per_pixel"] for m in _metrics(digital_run, "digital-maps", 100.0)])
    analog = np.mean([m["channel_uses_per_pixel"] for m in _metrics(digital_run, "ours", 100.0)])
    assert maps < analog


def test_far_below_threshold_every_frame_is_lost_and_shown_grey(digital_run):
    for row in ("digital-jpeg", "digital-png", "digital-maps"):
        for m in _metrics(digital_run, row, -10.0):
            assert m["lost"] == 1, row
    grey = cv2.imread(str(digital_run / "samples" / "digital-png" / "psnr-10" / "scene000.png"))
    assert grey is not None and np.all(grey == LOST_GREY)


def test_row_meta_records_channel_params_only_when_they_matter(tmp_path):
    from gesco.evaluate.config import EvalConfig
    from gesco.evaluate.methods import select_methods
    from gesco.evaluate.plan import plan_rows, row_meta

    config = EvalConfig(out=tmp_path).validate()
    metas = {p.method.key: row_meta(p, config) for p in plan_rows(select_methods(["ours", "digital-png"]), config)}
    assert "channel_params" not in metas["ours"]  # an AWGN store made before channel parameters still resumes
    assert metas["digital-png"]["ldpc_iterations"] == 20 and "channel_params" in metas["digital-png"]
    config = EvalConfig(out=tmp_path, channel="rayleigh", channel_params={"block_length": "64"}).validate()
    meta = row_meta(plan_rows(select_methods(["ours"]), config)[-1], config)
    assert meta["channel_params"] == {"block_length": 64, "equalizer": "mmse"}


def test_analog_rows_describe_themselves_as_before_digital_rows_existed():
    """A result store made before the digital rows holds method records without 'source';
    the analog rows still describe themselves that way, so such a store resumes."""
    from gesco.evaluate.methods import METHODS

    for key in ("real", "full-image", "ours"):
        assert "source" not in METHODS[key].to_dict()
    images = [m for m in METHODS.values() if m.kind == "digital-image"]
    assert images and all(m.to_dict()["source"] == m.source for m in images)
