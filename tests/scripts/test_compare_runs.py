"""scripts/compare_runs.py: paired differences of one row between two evaluation stores."""

import json

import numpy as np
import pytest

from gesco.evaluate.store import ResultStore, UnitResult


def _store(folder, miou, split="val"):
    with ResultStore(folder / "results.sqlite") as store:
        store.set_meta("plan", {"psnrs": [1.0], "split": split, "seed": 0, "edges": folder.name})
        store.add([UnitResult("ours-fast", 1.0, i, {"miou": m, "lpips": 0.3, "ssim": 0.3, "mean_colour_error": 20.0,
                                                    "class_colour_error": None if i == 0 else 30.0},
                              np.zeros(2, np.float32)) for i, m in enumerate(miou)])


def test_paired_difference_and_refusal_of_unpaired_runs(tmp_path, load_script, capsys):
    compare = load_script("scripts/compare_runs.py")
    a, b, c = tmp_path / "uploaded", tmp_path / "none", tmp_path / "test"
    _store(a, [0.5, 0.6, 0.7])
    _store(b, [0.4, 0.6, 0.5])
    _store(c, [0.5, 0.6, 0.7], split="test")
    out = tmp_path / "cmp.json"
    assert compare.main([f"uploaded={a}", f"none={b}", "--scenes", "3", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    d = r["psnrs"]["1"]["none"]["minus_baseline"]
    assert d["miou"]["mean"] == pytest.approx(-0.1) and d["miou"]["se"] == pytest.approx(0.1 / np.sqrt(3))
    assert d["class_colour_error"]["n"] == 2  # scene 0 has no class colour error: left out, not zero
    assert r["runs"]["none"]["edges"] == "none"
    with pytest.raises(SystemExit, match="not paired"):
        compare.main([f"uploaded={a}", f"test={c}", "--scenes", "3"])
