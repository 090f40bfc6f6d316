"""scripts/appearance_study.py: settings parsing and an end-to-end run on one validation scene."""

import json

import pytest

from gesco.appearance import AppearanceError


def test_settings_parse_mode_bits_and_repeat(load_script):
    study = load_script("scripts/appearance_study.py")
    assert study.label(study.parse_setting("off")) == "off"
    s = study.parse_setting("classes:4:8")
    assert (s.mode, s.bits, s.repeat) == ("classes", 4, 8)
    assert study.label(study.parse_setting("mean:3")) == "mean:3:auto"  # chosen per frame
    assert study.label(study.parse_setting("mean:3:1")) == "mean:3:1"
    with pytest.raises(AppearanceError, match="bits per colour component must be in"):
        study.parse_setting("mean:9")


def test_study_runs_pairs_with_off_and_meets_the_quantiser_bound(load_script, tmp_path):
    study = load_script("scripts/appearance_study.py")
    assert study.main(["--scenes", "1", "--batch", "1", "--settings", "off", "mean:6", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "appearance.json").read_text())
    assert r["split"] == "val" and r["scenes"] == 1
    mean = r["settings"]["mean:6:auto"]
    assert mean["bits"]["mean"] == 18 and mean["bit_errors"]["mean"] == 0
    assert r["per_scene"]["mean:6:auto"]["repeat"] == [1]  # 100 dB: one copy meets the target
    # 6 bits: at most 2 per component (+ rounding to uint8-free floats): the projection adds no colour error
    assert mean["mean_colour_error"]["mean"] < 2 * 3 ** 0.5 + 0.5
    assert "minus_off" in mean and "| `mean:6:auto` | 18 | 1.0 (1-1) |" in (tmp_path / "appearance.md").read_text()
