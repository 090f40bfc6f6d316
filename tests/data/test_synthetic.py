"""Tests of the procedural synthetic street scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gesco.data.synthetic import (
    BUILDING,
    CAR,
    PERSON,
    ROAD,
    SIDEWALK,
    SKY,
    SPLITS,
    SYNTHETIC_LABEL_IDS,
    SYNTHETIC_THING_IDS,
    SyntheticScenes,
    generate_scene,
    split_seed,
)
from gesco.errors import GescoInputError, ShapeError
from gesco.semantics.classes import CITYSCAPES

SEEDS = range(20)


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(s) for s in SEEDS]


def test_same_seed_same_scene():
    a, b = generate_scene(123), generate_scene(123)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.label, b.label)
    assert np.array_equal(a.instance, b.instance)


def test_different_seeds_differ():
    a, b = generate_scene(1), generate_scene(2)
    assert not np.array_equal(a.label, b.label)
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() > 10


def test_does_not_touch_global_rng():
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    generate_scene(5)
    assert np.random.random() == before


@pytest.mark.parametrize("h,w", [(64, 128), (128, 256), (16, 16), (37, 71), (256, 512)])
def test_shapes_and_dtypes(h, w):
    s = generate_scene(7, h, w)
    assert s.image.shape == (h, w, 3) and s.image.dtype == np.uint8
    assert s.label.shape == (h, w) and s.label.dtype == np.uint8
    assert s.instance.shape == (h, w) and s.instance.dtype == np.int32


def test_layout_does_not_depend_on_resolution():
    small = generate_scene(11, 64, 128)
    big = generate_scene(11, 256, 512)
    # nearest-downsampled big label map agrees with the small one on most pixels
    down = big.label[2::4, 2::4]
    assert (down == small.label).mean() > 0.9


def test_label_ids_valid(scenes):
    for s in scenes:
        ids = set(np.unique(s.label).tolist())
        assert ids <= SYNTHETIC_LABEL_IDS
        CITYSCAPES.check_ids(s.label)
    assert SYNTHETIC_THING_IDS <= set(CITYSCAPES.thing_ids)
    assert not (SYNTHETIC_LABEL_IDS & set(CITYSCAPES.ignore_ids))


def test_road_in_every_scene_sidewalk_in_most(scenes):
    present = [set(np.unique(s.label).tolist()) for s in scenes]
    assert all(ROAD in ids and (SKY in ids or BUILDING in ids) for ids in present)
    assert sum(SIDEWALK in ids for ids in present) >= 17  # traffic may hide the sidewalks


def test_instance_convention(scenes):
    for s in scenes:
        things = np.isin(s.label, list(SYNTHETIC_THING_IDS))
        # stuff: the plain label id
        assert np.array_equal(s.instance[~things], s.label[~things].astype(np.int32))
        # things: label_id * 1000 + k
        assert np.array_equal(s.instance[things] // 1000, s.label[things].astype(np.int32))


def test_things_have_several_instances(scenes):
    n_cars = [len(np.unique(s.instance[s.label == CAR])) for s in scenes]
    n_people = [len(np.unique(s.instance[s.label == PERSON])) for s in scenes]
    assert np.mean(n_cars) > 2.0
    assert np.mean(n_people) > 1.0
    assert sum(n > 0 for n in n_people) >= 10


def test_enough_classes_per_scene(scenes):
    counts = [len(np.unique(s.label)) for s in scenes]
    assert np.mean(counts) >= 9
    assert min(counts) >= 5


def test_image_agrees_with_label(scenes):
    # per scene, the sky's mean colour is far from the road's (brighter or bluer)
    gaps = []
    for s in scenes:
        img = s.image.astype(float)
        sky, road = s.label == SKY, s.label == ROAD
        if sky.sum() < 20:
            continue
        gap = img[sky].mean(0) - img[road].mean(0)
        assert np.linalg.norm(gap) > 30
        gaps.append(gap.mean())
    assert np.mean(gaps) > 30  # and brighter on average
    img = np.concatenate([s.image[s.label == 21] for s in scenes]).astype(float)
    assert (img[:, 1] > img[:, 2] + 10).mean() > 0.6  # green over blue on vegetation


def test_class_colours_differ(scenes):
    # class-mean colours over 20 scenes: sidewalk brighter than road, cars vary in colour
    def pixels(label_id):
        return np.concatenate([s.image[s.label == label_id] for s in scenes]).astype(float)

    road, walk = pixels(ROAD), pixels(SIDEWALK)
    assert walk.mean() > road.mean() + 20
    car_means = [s.image[s.label == CAR].mean() for s in scenes if (s.label == CAR).sum() > 50]
    assert np.std(car_means) > 10


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_seed(bad):
    with pytest.raises(GescoInputError):
        generate_scene(bad)


@pytest.mark.parametrize("h,w", [(15, 128), (64, 8), (0, 0)])
def test_bad_size(h, w):
    with pytest.raises(ShapeError):
        generate_scene(0, h, w)


def test_split_seeds_disjoint():
    assert split_seed("train", 0) == 0
    assert split_seed("val", 5) == 1_000_005
    assert split_seed("test", 0) == 2_000_000
    ranges = sorted(SPLITS.values())
    for (_a0, a1), (b0, _b1) in zip(ranges, ranges[1:]):
        assert a1 <= b0
    with pytest.raises(GescoInputError):
        split_seed("val", 100_000)
    with pytest.raises(GescoInputError):
        split_seed("nope", 0)


def test_dataset_items():
    ds = SyntheticScenes("val", size=4, height=32, width=64)
    assert len(ds) == 4 and ds.class_space is CITYSCAPES
    item = ds[2]
    assert item["seed"] == 1_000_002
    assert item["image"].shape == (3, 32, 64) and item["image"].dtype == torch.float32
    assert -1.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["label"].shape == (32, 64) and item["label"].dtype == torch.int64
    assert item["instance"].dtype == torch.int64
    scene = generate_scene(1_000_002, 32, 64)
    assert np.array_equal(item["label"].numpy(), scene.label)
    expected = torch.from_numpy(scene.image).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(item["image"], expected)
    with pytest.raises(IndexError):
        ds[4]


def test_dataset_hflip_flips_image_and_labels_together():
    ds = SyntheticScenes("train", size=2, height=32, width=64, hflip=True)
    scene = generate_scene(0, 32, 64)
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        item = ds[0]
        flipped = np.array_equal(item["label"].numpy(), scene.label[:, ::-1])
        if flipped:
            assert np.array_equal(item["instance"].numpy(), scene.instance[:, ::-1])
            img = ((item["image"] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
            assert np.array_equal(img, scene.image[:, ::-1])
        else:
            assert np.array_equal(item["label"].numpy(), scene.label)
        seen.add(flipped)
    assert seen == {True, False}


def test_dataset_bad_args():
    with pytest.raises(GescoInputError):
        SyntheticScenes("nope")
    with pytest.raises(GescoInputError):
        SyntheticScenes("val", size=200_000)


@pytest.mark.parametrize("cache", [True, "dir"])
def test_cached_dataset_matches_on_the_fly(cache, tmp_path):
    cache_arg = tmp_path / "cache" if cache == "dir" else True
    plain = SyntheticScenes("test", size=3, height=24, width=48)
    cached = SyntheticScenes("test", size=3, height=24, width=48, cache=cache_arg)
    for i in range(3):
        a, b = plain[i], cached[i]
        assert a["seed"] == b["seed"]
        for k in ("image", "label", "instance"):
            assert torch.equal(a[k], b[k]), k
    if cache == "dir":
        files = sorted(p.name for p in (tmp_path / "cache").iterdir())
        assert len(files) == 3 and all(f.endswith(".npy") and "test_3_24x48" in f for f in files)
        again = SyntheticScenes("test", size=3, height=24, width=48, cache=cache_arg)  # loads the files
        assert torch.equal(again[2]["label"], plain[2]["label"])
