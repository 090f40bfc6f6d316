"""scripts/table5_ordering.py: Table 5's rows and the paper's orderings from one evaluation store,
as paired differences with a verdict; rows not run are shown as such."""

import json

import numpy as np
import pytest

from gesco.evaluate.paired import paired_difference
from gesco.evaluate.store import ResultStore, UnitResult

BASE = np.array([0.40, 0.50, 0.45, 0.55, 0.50, 0.42])
J1 = np.array([0.01, -0.01, 0.0, 0.01, -0.01, 0.0])  # small jitter, sums to 0
J2 = np.array([0.05, -0.05, 0.04, -0.04, 0.03, -0.03])  # large jitter, sums to 0
MIOU = {"ours": BASE + 0.10 + J1, "no-noisy": BASE + 0.05, "no-fds": BASE + 0.12, "neither": BASE + J2}
LPIPS = {"ours": 0.3 + J2, "no-noisy": np.full(6, 0.3), "no-fds": np.full(6, 0.3), "neither": np.full(6, 0.3)}
SHIFT = {"ours": 0.05, "no-noisy": 0.1, "no-fds": 0.1, "neither": 2.0}  # feature offsets: FD grows with them


def _store(folder):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(6, 4)).astype(np.float32)
    with ResultStore(folder / "results.sqlite") as store:
        store.set_meta("plan", {"psnrs": [10.0], "split": "test", "seed": 0})  # the last run's; --psnr names all
        store.add([UnitResult("real", None, i, {"miou": 0.6}, real[i]) for i in range(6)])
        for row in MIOU:
            store.add([UnitResult(row, 10.0, i, {"miou": float(MIOU[row][i]), "lpips": float(LPIPS[row][i])},
                                  real[i] + np.float32(SHIFT[row])) for i in range(6)])
        store.add([UnitResult("ours", 1.0, i, {"miou": 0.5, "lpips": 0.3}, real[i]) for i in range(6)])
        store.add([UnitResult("neither", 1.0, i, {"miou": 0.5, "lpips": 0.3}, real[i]) for i in range(5)])  # unfinished


def test_orderings_are_paired_differences_signed_as_the_papers_claim(tmp_path, load_script):
    _store(tmp_path)
    t5 = load_script("scripts/table5_ordering.py")
    out, md = tmp_path / "o.json", tmp_path / "o.md"
    assert t5.main([str(tmp_path), "--scenes", "6", "--psnr", "10", "1", "--bootstrap", "50", "--json", str(out), "--md", str(md)]) == 0
    r = json.loads(out.read_text())
    assert r["split"] == "test" and set(r["psnrs"]) == {"10", "1"}
    at10 = {(o["better"], o["worse"]): o for o in r["psnrs"]["10"]["orderings"]}
    assert len(at10) == 5
    both_vs_fds_only = at10[("ours", "no-noisy")]["miou"]
    expect = paired_difference(MIOU["ours"].tolist(), MIOU["no-noisy"].tolist())
    assert both_vs_fds_only["mean"] == pytest.approx(0.05) and both_vs_fds_only["se"] == pytest.approx(expect["se"])
    assert both_vs_fds_only["verdict"] == "holds"
    assert at10[("ours", "no-fds")]["miou"]["verdict"] == "reversed"  # noisy-only is better here by construction
    # LPIPS: lower is better, so the signed difference is worse - better: -J2, mean 0
    assert at10[("ours", "neither")]["lpips"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert at10[("ours", "neither")]["lpips"]["verdict"] == "not resolved"
    fd = at10[("no-noisy", "neither")]["fd"]
    assert fd["mean"] > 0 and np.isfinite(fd["se_bootstrap"]) and fd["verdict"] == "holds"
    assert r["psnrs"]["10"]["complete"] and not r["psnrs"]["10"]["paper_ordering_holds"]
    # PSNR 1: only `ours` finished (neither has 5 of 6 scenes): no ordering, the rest "not run"
    assert r["psnrs"]["1"]["orderings"] == [] and not r["psnrs"]["1"]["complete"]
    text = md.read_text()
    assert "| neither (`neither`) | not run |" in text and "not all rows run" in text
    assert "The paper's ordering holds at 10 dB on mIoU and LPIPS: **no**" in text


@pytest.mark.parametrize(("mean", "se", "expected"), [(0.05, 0.02, "holds"), (-0.05, 0.02, "reversed"),
                                                       (0.03, 0.02, "not resolved"), (0.1, float("nan"), "not resolved")])
def test_verdict_needs_two_standard_errors(load_script, mean, se, expected):
    assert load_script("scripts/table5_ordering.py").verdict(mean, se) == expected
