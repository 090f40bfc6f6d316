"""Smoke test of bench/bench_pretrained.py (``--tiny``): the cost benchmark of the authors' network cannot rot."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("bench/bench_pretrained.py")


def test_tiny_run_writes_every_section(bench, tmp_path):
    out = tmp_path / "pretrained_tiny.json"
    assert bench.main(["--tiny", "--threads", "1", "--no-progress", "--tmp", str(tmp_path), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["unet"]["spade_per_layer"] and res["unet"]["resblock_updown"]
    assert [r["batch"] for r in res["forward"]] == [1, 2] and all(r["median_s"] > 0 for r in res["forward"])
    rows = {(r["sampler"], r["steps"]): r for r in res["per_image"]}
    guided = res["forward"][1]["median_s"]
    assert rows[("dpmpp-2m-sde", 20)]["passes"] == 40 and rows[("ancestral", None)]["passes"] == 2000
    assert rows[("dpmpp-2m-sde", 20)]["seconds"] == pytest.approx(20 * guided)
    imp = res["import"]
    assert imp["dropped_keys"] > 0 and imp["seconds"] > 0 and imp["safetensors_mb"] > 0
    assert res["memory"]["peak_rss_mb"] > 0
    assert not list(tmp_path.glob("gesco-import-bench-*"))  # the full-size files are not kept
    assert "extrapolated" in out.with_suffix(".md").read_text()
