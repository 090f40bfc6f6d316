"""bench/bench_lossless.py runs end to end on a few scenes and writes its results."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow  # ~40 s on the shared 2-core box (a 256x512 frame per codec and split)
def test_bench_lossless_writes_results_and_targets(load_script, tmp_path):
    bench = load_script("bench/bench_lossless.py")
    assert bench.main(["--scenes", "2", "--scenes-large", "1", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "lossless.json").read_text())
    assert set(results["tables"]) == {"val|64x128|2", "val|256x512|1", "test|64x128|2", "test|256x512|1"}
    for table in results["tables"].values():
        assert set(table) == set(bench.CODECS) and all(m["lossless"] for m in table.values())
        # the context codec codes these frames in fewer payload bits than every other lossless codec
        assert min(table, key=lambda name: table[name]["payload_bits_mean"]) == "context"
    assert results["hostile"]["random"]["refused"] and results["hostile"]["another_frame"]["refused"]
    assert "Targets of issue 28" in (tmp_path / "lossless.md").read_text()
