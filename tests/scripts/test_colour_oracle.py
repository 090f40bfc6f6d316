"""scripts/colour_oracle.py: the class means, the oracle paintings and an end-to-end run."""

import json

import numpy as np

from gesco.data.synthetic import generate_scene, split_seed


def test_class_means_are_the_pixel_weighted_means_of_the_train_scenes(load_script):
    oracle = load_script("scripts/colour_oracle.py")
    means, counts = oracle.class_means(3, 16, 32)
    scenes = [generate_scene(split_seed("train", i), 16, 32) for i in range(3)]
    labels = np.concatenate([s.label.reshape(-1) for s in scenes])
    rgb = np.concatenate([s.image.reshape(-1, 3) for s in scenes]).astype(np.float64)
    for c in np.unique(labels):
        assert counts[c] == (labels == c).sum()
        np.testing.assert_allclose(means[c], rgb[labels == c].mean(0))


def test_oracle_paintings_know_only_what_they_are_given(load_script):
    oracle = load_script("scripts/colour_oracle.py")
    label = np.array([[0, 0, 1], [1, 2, 2]])
    means = np.array([[10.0, 20, 30], [100, 110, 120], [200, 210, 220]])
    sent = np.full((2, 3, 3), 90.0)
    imgs = oracle.oracle_images(label, sent, means)
    np.testing.assert_allclose(imgs["class-mean"], means[label])  # the maps alone
    np.testing.assert_allclose(imgs["class-mean+rgb"].reshape(-1, 3).mean(0), sent.reshape(-1, 3).mean(0))
    grey = imgs["class-mean+grey"].reshape(-1, 3).mean(0) @ oracle.GREY
    assert abs(grey - 90.0) < 1e-9
    # every painting is still constant on each class (no scene detail leaks in)
    for img in imgs.values():
        for c in range(3):
            assert np.ptp(img[label == c], axis=0).max() < 1e-9


def test_oracle_runs_and_writes_its_results(load_script, tmp_path):
    oracle = load_script("scripts/colour_oracle.py")
    assert oracle.main(["--scenes", "2", "--fit-scenes", "3", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "oracle.json").read_text())
    assert r["split"] == "val" and r["scenes"] == 2 and set(r["oracles"]) == set(oracle.ORACLES)
    rgb = r["oracles"]["class-mean+rgb"]["mean_colour_error"]["mean"]
    assert rgb < 1.0 < r["oracles"]["class-mean"]["mean_colour_error"]["mean"]  # the side channel fixes the mean
    assert "class-mean+grey" in (tmp_path / "oracle.md").read_text()
