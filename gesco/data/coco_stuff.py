"""COCO-Stuff 164k in its official on-disk layout.

::

    root/train2017/*.jpg                              (and val2017/)
    root/stuffthingmaps_trainval2017/train2017/*.png  (and val2017/)

Label maps hold 0..181 (things 0..90 and stuff 91..181, COCO ids minus one) and 255 for
"unlabeled", which becomes class 182: a 183-id class space, as in SDM. No instance
maps are read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gesco.data.files import (
    FileTriple,
    PairedFileDataset,
    check_split,
    jpg_png_pairs,
    limit,
    require_dir,
)
from gesco.errors import ClassIdError
from gesco.semantics.classes import get_class_space

SPLIT_DIRS = {"train": "train2017", "val": "val2017"}
UNLABELED_RAW = 255
UNLABELED = 182


def remap_coco_stuff(raw: np.ndarray) -> np.ndarray:
    """Raw stuffthingmap values -> class ids: 0..181 unchanged, 255 -> 182; uint8 ``(H, W)``.

    Raises:
        ClassIdError: a value in 182..254 (not a COCO-Stuff id).
    """
    raw = np.asarray(raw)
    bad = (raw > 181) & (raw != UNLABELED_RAW)
    if bad.any():
        raise ClassIdError(f"COCO-Stuff label map holds values {sorted(np.unique(raw[bad]).tolist())[:10]}; "
                           "expected 0..181 or 255")
    out = raw.astype(np.uint8, copy=True)
    out[raw == UNLABELED_RAW] = UNLABELED
    return out


def coco_stuff_files(root: str | Path, split: str) -> list[FileTriple]:
    """All samples of a split, sorted by name (images without a label map are an error)."""
    root = Path(root)
    folder = check_split(split, SPLIT_DIRS, "coco-stuff")
    img_dir = require_dir(root / folder, "coco-stuff images")
    lab_dir = require_dir(root / "stuffthingmaps_trainval2017" / folder, "coco-stuff label maps")
    return jpg_png_pairs(img_dir, lab_dir, "coco-stuff", "label map")


class CocoStuffDataset(PairedFileDataset):
    """COCO-Stuff ``split`` at ``height x width`` (items as :class:`PairedFileDataset`, no instances)."""

    def __init__(self, root: str | Path, split: str = "train", height: int = 256, width: int = 256,
                 hflip: bool = False, max_items: int | None = None):
        triples = limit(coco_stuff_files(root, split), max_items)
        super().__init__(triples, get_class_space("coco-stuff"), height, width, hflip, remap=remap_coco_stuff)
        self.root, self.split = Path(root), split
