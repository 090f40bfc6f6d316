"""bench/appearance_miou_cost.py: the boundary mask, and one scene end to end."""

import json

import numpy as np


def test_boundary_mask_marks_pixels_next_to_another_label(load_script):
    mod = load_script("bench/appearance_miou_cost.py")
    label = np.zeros((4, 6), np.int64)
    label[:, 3:] = 1
    edge = mod.boundary_mask(label)
    assert edge[:, 2:4].all() and not edge[:, :2].any() and not edge[:, 4:].any()
    assert not mod.boundary_mask(np.zeros((3, 3), np.int64)).any()


def test_one_scene_scores_every_variant(load_script, tmp_path):
    mod = load_script("bench/appearance_miou_cost.py")
    assert mod.main(["--scenes", "1", "--batch", "1", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "miou_cost.json").read_text())
    assert r["split"] == "val" and set(r["variants"]) == {"off", "mean:6", "classes:6", "classes:6:big", "classes:6:sent"}
    for name, row in r["variants"].items():
        assert 0.0 <= row["miou"]["mean"] <= 1.0 and row["lpips"]["mean"] > 0.0
        assert np.array(row["confusion"]).sum() == 64 * 128, name  # every pixel of the one scene scored once
    assert "| `classes:6:sent` |" in (tmp_path / "miou_cost.md").read_text()
    # the whole-image mean meets its 6-bit quantiser's bound (2 per component) here as in the study
    assert r["variants"]["mean:6"]["mean_colour_error"]["mean"] < 2 * 3 ** 0.5 + 0.5
