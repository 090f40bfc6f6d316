"""bench/paired_eval.py pairs two evaluation runs scene by scene."""

import json
import sqlite3

import pytest


def _run(folder, values: dict[int, float]) -> None:
    folder.mkdir()
    con = sqlite3.connect(folder / "results.sqlite")
    con.execute("CREATE TABLE results (row TEXT NOT NULL, psnr TEXT NOT NULL, scene INTEGER NOT NULL, "
                "metrics TEXT NOT NULL, features BLOB NOT NULL, PRIMARY KEY (row, psnr, scene))")
    for scene, v in values.items():
        m = {"miou": v, "lpips": 1 - v, "ssim": v / 2, "mean_colour_error": 10 * v, "class_colour_error": 20 * v}
        con.execute("INSERT INTO results VALUES ('ours-fast', '100', ?, ?, x'')", (scene, json.dumps(m)))
    con.commit()
    con.close()


def test_paired_difference_over_the_common_scenes(tmp_path, load_script):
    mod = load_script("bench/paired_eval.py")
    _run(tmp_path / "a", {0: 0.5, 1: 0.6, 2: 0.7})
    _run(tmp_path / "b", {0: 0.6, 1: 0.8, 3: 0.9})  # scene 3 has no partner, scene 2 neither
    assert mod.main(["--base", str(tmp_path / "a"), "--new", str(tmp_path / "b"), "--out", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o" / "paired.json").read_text())["metrics"]
    assert res["miou"]["n"] == 2
    assert res["miou"]["diff"] == pytest.approx(0.15)
    assert res["miou"]["se"] == pytest.approx(0.05)  # diffs 0.1 and 0.2: std 0.0707 / sqrt(2)
    assert res["mean_colour_error"]["diff"] == pytest.approx(1.5)


def test_a_run_without_the_row_is_refused(tmp_path, load_script):
    mod = load_script("bench/paired_eval.py")
    _run(tmp_path / "a", {0: 0.5})
    with pytest.raises(SystemExit, match="no results for row 'ours' at PSNR 100"):
        mod.main(["--base", str(tmp_path / "a"), "--new", str(tmp_path / "a"), "--row", "ours", "--out", str(tmp_path)])


def test_fd_proxy_with_a_paired_bootstrap_error(tmp_path, load_script, monkeypatch):
    """--bootstrap adds the FD of both runs' images to the base run's real ones (bench_finishing.fd) and the
    bootstrap standard error of their difference; a base run without its real row is refused."""
    from pathlib import Path

    import numpy as np

    from gesco.evaluate.store import ResultStore, UnitResult

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "bench"))  # as when run as a script
    mod = load_script("bench/paired_eval.py")
    fd = load_script("bench/bench_finishing.py").fd
    rng = np.random.default_rng(0)
    real = rng.normal(size=(12, 4)).astype(np.float32)
    m = {"miou": 0.5, "lpips": 0.3, "ssim": 0.4, "mean_colour_error": 9.0, "class_colour_error": 9.0}
    for name, shift in (("a", 0.2), ("b", 0.6)):
        with ResultStore(tmp_path / name / "results.sqlite") as store:
            rows = [UnitResult("ours-fast", 100.0, i, m, real[i] + shift + 0.1 * rng.normal(size=4).astype(np.float32))
                    for i in range(12)]
            if name == "a":
                rows += [UnitResult("real", None, i, {"miou": 0.6}, real[i]) for i in range(12)]
            store.add(rows)
    res = mod.fd_paired(str(tmp_path / "a"), str(tmp_path / "b"), "ours-fast", "100", draws=50)
    feats = {}
    for name in ("a", "b"):
        with ResultStore(tmp_path / name / "results.sqlite") as store:
            feats[name] = store.load("ours-fast", 100.0, 12)[2].astype(np.float64)
    assert res["base"] == pytest.approx(fd(feats["a"], real.astype(np.float64)))
    assert res["diff"] == pytest.approx(res["new"] - res["base"]) and res["diff"] > 0  # the shifted run is farther
    assert res["se"] > 0 and res["n"] == 12 and res["draws"] == 50
    with pytest.raises(SystemExit, match="real row"):
        mod.fd_paired(str(tmp_path / "b"), str(tmp_path / "a"), "ours-fast", "100", draws=10)
