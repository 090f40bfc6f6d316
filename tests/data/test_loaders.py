"""Tests of the real data-set loaders on tiny fixture trees in the official layouts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gesco.data import DatasetLayoutError, build_dataset
from gesco.data.ade20k import ADE20KDataset
from gesco.data.cityscapes import CityscapesDataset
from gesco.data.coco_stuff import CocoStuffDataset, remap_coco_stuff
from gesco.data.synthetic import SyntheticScenes
from gesco.data.transforms import resize_image, resize_labels
from gesco.errors import ClassIdError, GescoInputError, ImageDecodeError
from gesco.semantics.classes import get_class_space

H, W = 40, 80  # fixture size on disk


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = ".png" if path.suffix == ".png" else ".jpg"
    params = [cv2.IMWRITE_JPEG_QUALITY, 100] if ext == ".jpg" else []
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)


def _write_map(path: Path, m: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), m)


def _sample(seed: int, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """An image whose left half is red and right half blue, and a label map with left / right ids."""
    rng = np.random.default_rng(seed)
    img = np.zeros((H, W, 3), np.uint8)
    img[:, : W // 2] = (200, 30, 30)
    img[:, W // 2:] = (30, 30, 200)
    label = np.full((H, W), ids[0], np.uint8)
    label[:, W // 2:] = ids[1]
    label[rng.integers(0, H), :] = ids[0]  # a little per-sample variation
    return img, label


@pytest.fixture()
def cityscapes_root(tmp_path: Path) -> Path:
    root = tmp_path / "cityscapes"
    for split, cities in (("train", ["aachen", "bochum"]), ("val", ["frankfurt"])):
        for ci, city in enumerate(cities):
            for k in range(2):
                stem = f"{city}_{k:06d}_000019"
                img, label = _sample(ci * 10 + k, [7, 26])
                _write_rgb(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", img)
                _write_map(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label)
                inst = label.astype(np.uint16)
                inst[label == 26] = 26000 + k
                _write_map(root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png", inst)
    return root


@pytest.fixture()
def coco_root(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    for split in ("train2017", "val2017"):
        for k in range(3):
            name = f"{k + 1:012d}"
            img, label = _sample(k, [0, 255])  # person and unlabeled
            label[:5, :5] = 181
            _write_rgb(root / split / f"{name}.jpg", img)
            _write_map(root / "stuffthingmaps_trainval2017" / split / f"{name}.png", label)
    return root


@pytest.fixture()
def ade_root(tmp_path: Path) -> Path:
    root = tmp_path / "ade"
    base = root / "ADEChallengeData2016"
    for split in ("training", "validation"):
        for k in range(2):
            name = f"ADE_{split[:5]}_{k + 1:08d}"
            img, label = _sample(k, [0, 150])
            _write_rgb(base / "images" / split / f"{name}.jpg", img)
            _write_map(base / "annotations" / split / f"{name}.png", label)
    return root


def _check_item(item: dict, h: int, w: int, instance: bool) -> None:
    assert item["image"].shape == (3, h, w) and item["image"].dtype == torch.float32
    assert -1.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["label"].shape == (h, w) and item["label"].dtype == torch.int64
    assert ("instance" in item) == instance
    if instance:
        assert item["instance"].shape == (h, w) and item["instance"].dtype == torch.int64


# ----------------------------------------------------------------------------- transforms
def test_resize_labels_nearest_keeps_ids_and_positions():
    lab = np.zeros((4, 8), np.uint8)
    lab[:, 4:] = 9
    out = resize_labels(lab, 2, 4)
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 0, 9, 9], [0, 0, 9, 9]]
    up = resize_labels(lab, 8, 16)
    assert set(np.unique(up).tolist()) == {0, 9} and (up[:, 8:] == 9).all() and (up[:, :8] == 0).all()


def test_resize_image_area_when_shrinking():
    img = np.zeros((4, 4, 3), np.uint8)
    img[::2, ::2] = 255  # one white pixel per 2x2 block
    out = resize_image(img, 2, 2)
    assert np.all(np.abs(out.astype(int) - 64) <= 1)  # area average, not a sampled pixel


# ----------------------------------------------------------------------------- cityscapes
def test_cityscapes_items(cityscapes_root: Path):
    ds = CityscapesDataset(cityscapes_root, "train", height=20, width=40)
    assert len(ds) == 4 and ds.class_space is get_class_space("cityscapes")
    item = ds[0]
    _check_item(item, 20, 40, instance=True)
    assert item["name"] == "aachen_000000_000019"
    assert set(item["label"].unique().tolist()) == {7, 26}
    # image and labels stay aligned: the car (right half) is blue, the road (left) red
    img = item["image"]
    car, road = item["label"] == 26, item["label"] == 7
    assert img[2][car].mean() > 0.3 and img[0][road].mean() > 0.3
    assert set(item["instance"][car].unique().tolist()) == {26000}
    assert set(item["instance"][road].unique().tolist()) == {7}
    assert len(CityscapesDataset(cityscapes_root, "val", 20, 40)) == 2


def test_cityscapes_without_instances(cityscapes_root: Path):
    for p in (cityscapes_root / "gtFine").rglob("*_instanceIds.png"):
        p.unlink()
    with pytest.raises(DatasetLayoutError, match="instanceIds"):
        CityscapesDataset(cityscapes_root, "train")
    ds = CityscapesDataset(cityscapes_root, "train", 20, 40, instances=False)
    _check_item(ds[1], 20, 40, instance=False)


def test_cityscapes_hflip(cityscapes_root: Path):
    plain = CityscapesDataset(cityscapes_root, "train", 20, 40)[0]
    ds = CityscapesDataset(cityscapes_root, "train", 20, 40, hflip=True)
    torch.manual_seed(1)
    kinds = set()
    for _ in range(16):
        item = ds[0]
        flipped = torch.equal(item["label"], plain["label"].flip(-1))
        assert flipped or torch.equal(item["label"], plain["label"])
        if flipped:
            assert torch.equal(item["instance"], plain["instance"].flip(-1))
            assert torch.allclose(item["image"], plain["image"].flip(-1))
        kinds.add(flipped)
    assert kinds == {True, False}


def test_cityscapes_layout_errors(tmp_path: Path, cityscapes_root: Path):
    with pytest.raises(DatasetLayoutError, match="leftImg8bit"):
        CityscapesDataset(tmp_path / "nowhere", "train")
    with pytest.raises(FileNotFoundError):  # DatasetLayoutError is also a FileNotFoundError
        CityscapesDataset(tmp_path / "nowhere", "train")
    with pytest.raises(GescoInputError, match="split"):
        CityscapesDataset(cityscapes_root, "training")
    next((cityscapes_root / "gtFine" / "val").rglob("*_labelIds.png")).unlink()
    with pytest.raises(DatasetLayoutError, match="labelIds"):
        CityscapesDataset(cityscapes_root, "val")


def test_corrupt_image_raises(cityscapes_root: Path):
    p = sorted((cityscapes_root / "leftImg8bit" / "train").rglob("*.png"))[0]
    p.write_bytes(b"not a png")
    ds = CityscapesDataset(cityscapes_root, "train", 20, 40)
    with pytest.raises(ImageDecodeError):
        ds[0]


# ----------------------------------------------------------------------------- coco-stuff
def test_coco_stuff_items_and_remap(coco_root: Path):
    ds = CocoStuffDataset(coco_root, "val", height=20, width=40)
    assert len(ds) == 3 and ds.class_space.num_classes == 183
    item = ds[0]
    _check_item(item, 20, 40, instance=False)
    ids = set(item["label"].unique().tolist())
    assert ids == {0, 181, 182}  # 255 became 182
    assert item["image"][2][item["label"] == 182].mean() > 0.3  # unlabeled half is the blue half


def test_coco_stuff_remap_rejects_bad_values():
    raw = np.array([[0, 181, 255]], np.uint8)
    assert remap_coco_stuff(raw).tolist() == [[0, 181, 182]]
    with pytest.raises(ClassIdError):
        remap_coco_stuff(np.array([[0, 200]], np.uint8))


def test_coco_stuff_layout_errors(tmp_path: Path, coco_root: Path):
    with pytest.raises(DatasetLayoutError, match="train2017"):
        CocoStuffDataset(tmp_path, "train")
    next((coco_root / "stuffthingmaps_trainval2017" / "train2017").glob("*.png")).unlink()
    with pytest.raises(DatasetLayoutError, match="label map"):
        CocoStuffDataset(coco_root, "train")


# ----------------------------------------------------------------------------- ade20k
def test_ade20k_items(ade_root: Path):
    ds = ADE20KDataset(ade_root, "train", height=16, width=16)
    assert len(ds) == 2 and ds.class_space.num_classes == 151
    item = ds[1]
    _check_item(item, 16, 16, instance=False)
    assert set(item["label"].unique().tolist()) == {0, 150}
    # root may also be the ADEChallengeData2016 folder itself
    assert len(ADE20KDataset(ade_root / "ADEChallengeData2016", "val", 16, 16)) == 2


def test_ade20k_rejects_ids_out_of_range(ade_root: Path):
    p = sorted((ade_root / "ADEChallengeData2016" / "annotations" / "training").glob("*.png"))[0]
    _write_map(p, np.full((H, W), 151, np.uint8))
    ds = ADE20KDataset(ade_root, "train", 16, 16)
    with pytest.raises(ClassIdError):
        ds[0]


def test_ade20k_layout_errors(tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match="ADEChallengeData2016"):
        ADE20KDataset(tmp_path, "train")


# ----------------------------------------------------------------------------- factory
def test_build_dataset(cityscapes_root: Path, coco_root: Path, ade_root: Path):
    syn = build_dataset("synthetic", None, "val", 32, 64, size=3)
    assert isinstance(syn, SyntheticScenes) and len(syn) == 3
    cs = build_dataset("cityscapes", str(cityscapes_root), "train", 20, 40, max_items=3)
    assert isinstance(cs, CityscapesDataset) and len(cs) == 3
    assert isinstance(build_dataset("coco-stuff", coco_root, "train", 20, 40), CocoStuffDataset)
    assert isinstance(build_dataset("ade20k", ade_root, "val", 20, 40), ADE20KDataset)
    with pytest.raises(GescoInputError, match="unknown data set"):
        build_dataset("imagenet", None, "train", 8, 8)
    with pytest.raises(GescoInputError, match="root"):
        build_dataset("cityscapes", None, "train", 8, 8)


def test_dataloader_batches(cityscapes_root: Path):
    ds = build_dataset("cityscapes", cityscapes_root, "train", 20, 40)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 20, 40)
    assert batch["label"].shape == (2, 20, 40) and batch["instance"].shape == (2, 20, 40)
    assert len(batch["name"]) == 2
