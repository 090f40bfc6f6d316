"""``gesco evaluate --dataset cityscapes --root ...`` with an imported authors'-layout model at 256x512.

A tiny fake Cityscapes tree (two ``val`` images in the official layout, 16-bit instance
maps) is made here; the diffusion model is a random-weight authors' state dict brought in
by ``gesco import`` (its card: 256x512, 8-bit instance ids). Numbers of random models mean
nothing: the test checks that the tables are computed on the files, at their resolution.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from imported_helpers import H, W, import_random_authors_model

from gesco.cli import main
from gesco.errors import GescoInputError
from gesco.evaluate.config import EvalConfig
from gesco.segment.checkpoint import SegmenterCard
from gesco.segment.checkpoint import save_checkpoint as save_segmenter
from gesco.segment.model import SegmenterConfig, SegmenterNet


def fake_cityscapes(root: Path, split: str = "val", n: int = 2) -> Path:
    """``n`` 1024x512 scenes under ``root`` in Cityscapes' layout (image, labelIds, instanceIds)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        city = "frankfurt"
        stem = f"{city}_000000_{i:06d}"
        label = np.full((512, 1024), 7, np.uint8)
        label[:150] = 23
        label[300:400, 200 + 40 * i: 500] = 26
        inst = label.astype(np.uint16)
        inst[300:400, 200 + 40 * i: 350] = 26000
        inst[300:400, 350:500] = 26001
        image = rng.integers(0, 255, (512, 1024, 3), dtype=np.uint8)
        (root / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
        (root / "gtFine" / split / city).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"), image)
        cv2.imwrite(str(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"), label)
        cv2.imwrite(str(root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png"), inst)
    return root


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cs-eval")
    checkpoint = import_random_authors_model(tmp)  # the authors' layout at 256x512, random weights
    seg_cfg = SegmenterConfig(num_classes=35, patch=2, widths=(4, 8), stem_convs=1, context_dilations=(1,))
    save_segmenter(tmp / "segmenter", SegmenterNet(seg_cfg).eval(), SegmenterCard(model=seg_cfg, resolution=(H, W)))
    return {"root": fake_cityscapes(tmp / "cityscapes"), "checkpoint": checkpoint, "segmenter": tmp / "segmenter"}


def test_dataset_arguments_are_checked(assets, tmp_path):
    with pytest.raises(GescoInputError, match="unknown dataset"):
        EvalConfig(out=tmp_path, dataset="kitti", root="x").validate()
    with pytest.raises(GescoInputError, match="--root is the folder of --dataset cityscapes"):
        EvalConfig(out=tmp_path, dataset="cityscapes").validate()
    with pytest.raises(GescoInputError, match="--root needs --dataset cityscapes"):
        EvalConfig(out=tmp_path, root=str(assets["root"])).validate()
    with pytest.raises(GescoInputError, match=r"--scenes must be in \[1, 2\] \(2 val images"):
        EvalConfig(out=tmp_path, dataset="cityscapes", root=str(assets["root"]), split="val", scenes=3).validate()


@pytest.mark.slow  # 2 network passes at 256x512 (one guided step), ~1 min on the loaded shared 2-core box
def test_evaluate_cityscapes_with_the_imported_model(assets, tmp_path):
    out = tmp_path / "run"
    argv = ["evaluate", "--dataset", "cityscapes", "--root", str(assets["root"]), "--split", "val", "--scenes", "1",
            "--psnr", "10", "--methods", "real,ours", "--checkpoint", f"ours={assets['checkpoint']}",
            "--sampler", "dpmpp-2m-sde", "--steps", "1", "--segmenter", str(assets["segmenter"]), "--device", "cpu",
            "--batch-size", "1", "--grid-scenes", "1", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    text = json.dumps(results)
    assert "256" in text and "cityscapes" in text
    assert (out / "report.md").is_file()
    img = cv2.imread(str(next((out / "samples").rglob("*.png"))))
    assert img.shape == (H, W, 3)
