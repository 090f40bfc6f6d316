"""bench/bench_services.py: the ``--compare`` parser, and a smoke run on tiny random checkpoints
(two stacks: the benchmarked one and a second checkpoint given with ``@``), so the benchmark
cannot rot."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("bench/bench_services.py")


def test_parse_setting_reads_label_form_and_checkpoint(bench):
    assert bench.parse_setting("new=default") == ("new", {}, None)
    assert bench.parse_setting("old=respaced:50:2") == (
        "old", {"sampler": "respaced", "steps": "50", "guidance_scale": "2"}, None)
    assert bench.parse_setting("guided=dpmpp-2m-sde:20:2@checkpoints/x") == (
        "guided", {"sampler": "dpmpp-2m-sde", "steps": "20", "guidance_scale": "2"}, "checkpoints/x")
    assert bench.parse_setting("d=default@ck") == ("d", {}, "ck")


@pytest.mark.parametrize("spec", ["nolabel", "=default", "a=ddim:2", "a=ddim:2:2@", "a=ddim:2:2:1"])
def test_parse_setting_refuses_malformed_specs(bench, spec):
    with pytest.raises(SystemExit, match="expected LABEL=SAMPLER:STEPS:GUIDANCE"):
        bench.parse_setting(spec)


def test_compare_refuses_a_checkpoint_of_another_resolution_before_starting_it(bench, tmp_path):
    other = bench.tiny_checkpoint(tmp_path, (32, 64))
    args = bench.argparse.Namespace(label_free=True, threads=1, repeats=1)
    with pytest.raises(SystemExit, match="is not 64x128"):
        bench.compare_on_stacks(None, [("other", {}, str(other))], 1, tmp_path, (64, 128), args)
    assert not (tmp_path / "data-compare-0").exists()  # no second stack was started


@pytest.mark.slow
def test_bench_services_compares_two_checkpoints_on_two_stacks(bench, tmp_path):
    other = bench.tiny_checkpoint(tmp_path, (64, 128))  # a second random model, served by its own stack
    out = tmp_path / "services.json"
    assert bench.main(["--tiny", "--repeats", "1", "--clients", "2", "--per-client", "1", "--batch-sizes", "1",
                       "--threads", "1", "--compare", "default=default",
                       "--compare", f"other=ddim:2:2@{other}", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    run = result["runs"]["batch_1"]
    settings = run["compare"]["settings"]
    assert settings["default"]["checkpoint"] == "the benchmarked checkpoint"
    assert settings["other"]["checkpoint"] == str(other)
    assert settings["default"]["wall_ratio_to_first"] == 1.0
    assert all(r["median_s"]["wall_s"] > 0 and len(r["runs"]) == 1 for r in settings.values())
    assert run["throughput"]["jobs"] == 2 and not run["throughput"]["errors"]
    assert "TINY" in result["model"]
