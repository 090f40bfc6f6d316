"""Smoke tests of bench/bench_gpu.py on the CPU (``--tiny``), so the GPU benchmark cannot rot.

The script lives outside the package (bench/ has no ``__init__``); it is imported from its
path and its ``main(argv)`` is called in-process.
"""

from __future__ import annotations

import json
import math
import time

import pytest

TINY = ["--tiny", "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def bench_gpu(load_script):
    return load_script("bench/bench_gpu.py")


def _rows(rows: list[dict], key: str) -> dict[tuple, dict]:
    return {(r[key], r["batch" if key == "precision" else "images"]): r for r in rows}


def test_tiny_cpu_run_writes_expected_rows(bench_gpu, tmp_path):
    out = tmp_path / "gpu_tiny.json"
    res = bench_gpu.main([*TINY, "--out", str(out)])
    on_disk = json.loads(out.read_text())
    assert on_disk == json.loads(json.dumps(res))
    md = out.with_suffix(".md").read_text()
    assert "## U-Net, one guided step" in md and "## Receiver sampling" in md

    meta = on_disk["meta"]
    assert meta["tiny"] is True and meta["dtype"] == "autocast bf16"
    assert meta["machine"]["device"] == "cpu" and meta["machine"]["torch"]
    assert meta["unet"]["params_m"] > 0 and meta["unet"]["resolution"] == [32, 64]

    unet = _rows(on_disk["unet"], "variant")
    assert set(unet) == {(v, b) for v in bench_gpu.UNET_VARIANTS for b in (1, 2)}
    for v in ("eager_bf16", "eager_bf16_channels_last"):
        for b in (1, 2):
            r = unet[(v, b)]
            assert r["status"] == "ok", r
            assert r["forward_batch"] == 2 * b
            assert r["ms_per_guided_step"] > 0 and len(r["ms_all"]) == meta["repeats"]
            assert math.isclose(r["s_per_image_50_steps"], 50 * r["ms_per_guided_step"] / 1e3 / b, rel_tol=1e-2)
            assert r["s_per_image_1000_steps_extrapolated"] > r["s_per_image_50_steps"]
    assert unet[("eager_bf16_channels_last", 1)]["max_abs_diff_vs_eager_bf16"] < 0.5  # same model, other layout
    # no CUDA here: graphs and (without --compile-on-cpu) compile are skipped with a note, not crashed
    for b in (1, 2):
        assert unet[("cuda_graph", b)]["status"] == "skipped" and "CUDA" in unet[("cuda_graph", b)]["note"]
        assert unet[("compile", b)]["status"] == "skipped" and "--compile-on-cpu" in unet[("compile", b)]["note"]

    sampling = _rows(on_disk["sampling"], "precision")
    assert set(sampling) == {(p, b) for p in ("fp32", "autocast bf16") for b in (1, 2)}
    for r in sampling.values():
        assert r["status"] == "ok", r
        assert r["s_per_image"] > 0 and r["s_per_batch"] > 0 and r["steps"] == 2 and r["finite"]
        # the tiny model is an ordinary guided checkpoint: two passes per step, batch 2B
        assert r["passes_per_image"] == 4 and r["forward_batch"] == 2 * r["batch"] and not r["guidance_folded"]


def test_time_guard_skips_instead_of_overrunning(bench_gpu, tmp_path):
    out = tmp_path / "guard.json"
    res = bench_gpu.main([*TINY, "--max-seconds", "0", "--out", str(out)])
    rows = res["unet"] + res["sampling"]
    assert rows and all(r["status"] == "skipped" for r in rows)
    assert any("time guard" in r["note"] for r in rows)
    assert json.loads(out.read_text())["unet"] == res["unet"]


def test_hard_stop_interrupts_a_running_variant(bench_gpu):
    budget = bench_gpu.Budget(3.05)  # 0.05 s usable after the 3 s reserve
    with pytest.raises(bench_gpu.Deadline):
        with budget.hard_stop(reserve=3.0):
            time.sleep(2.0)
    try:  # dynamo wraps a backend's exception; the wrapped Deadline still counts as a timeout
        try:
            raise bench_gpu.Deadline("time guard")
        except bench_gpu.Deadline as e:
            raise RuntimeError("backend compiler failed") from e
    except RuntimeError as e:
        assert bench_gpu.is_deadline(e)
    assert not bench_gpu.is_deadline(ValueError("x"))


@pytest.mark.slow
def test_compile_variant_path_with_eager_backend(bench_gpu, tmp_path):
    """The compile variant's code path (dynamo tracing, no inductor: seconds, not minutes)."""
    out = tmp_path / "compile.json"
    res = bench_gpu.main([*TINY, "--batches", "1", "--skip-sampling", "--warmup", "0", "--repeats", "1",
                          "--compile-on-cpu", "--compile-backend", "eager", "--out", str(out)])
    r = _rows(res["unet"], "variant")[("compile", 1)]
    assert r["status"] == "ok", r
    assert r["ms_per_guided_step"] > 0 and r["setup_s"] > 0
    assert r["max_abs_diff_vs_eager_bf16"] < 0.5


def test_authors_unet_option_measures_the_imported_layout(bench_gpu, tmp_path):
    out = tmp_path / "gpu_authors_tiny.json"
    res = bench_gpu.main([*TINY, "--unet", "authors", "--skip-sampling", "--variants", "eager_bf16",
                          "--batches", "1", "--out", str(out)])
    unet = res["meta"]["unet"]
    assert "authors' layout" in unet["what"]
    assert unet["config"]["spade_per_layer"] and unet["config"]["resblock_updown"]
    ran = {r["variant"]: r["status"] for r in res["unet"]}
    assert ran["eager_bf16"] == "ok" and set(ran.values()) <= {"ok", "skipped"}
    cfg, what = bench_gpu.unet_choice("authors", tiny=False)
    assert cfg.spade_per_layer and "653,984,518" not in what  # the count is the test's, not a hard-coded claim
