"""ADE20K (SceneParsing / ADEChallengeData2016) in its official on-disk layout.

::

    root/ADEChallengeData2016/images/{training,validation}/*.jpg
    root/ADEChallengeData2016/annotations/{training,validation}/*.png

``root`` may also be the ``ADEChallengeData2016`` folder itself. Label maps hold
0 ("other", not scored) and the 150 classes 1..150: a 151-id class space. No instances.
"""

from __future__ import annotations

from pathlib import Path

from gesco.data.files import (
    DatasetLayoutError,
    FileTriple,
    PairedFileDataset,
    check_split,
    jpg_png_pairs,
    limit,
    require_dir,
)
from gesco.semantics.classes import get_class_space

SPLIT_DIRS = {"train": "training", "val": "validation"}
FOLDER = "ADEChallengeData2016"


def _base(root: Path) -> Path:
    if (root / FOLDER).is_dir():
        return root / FOLDER
    if (root / "images").is_dir() and (root / "annotations").is_dir():
        return root
    raise DatasetLayoutError(f"ade20k: expected directory {root / FOLDER} (with images/ and annotations/) "
                             f"or {root} to hold images/ and annotations/")


def ade20k_files(root: str | Path, split: str) -> list[FileTriple]:
    """All samples of a split, sorted by name (images without an annotation are an error)."""
    folder = check_split(split, SPLIT_DIRS, "ade20k")
    base = _base(Path(root))
    img_dir = require_dir(base / "images" / folder, "ade20k images")
    ann_dir = require_dir(base / "annotations" / folder, "ade20k annotations")
    return jpg_png_pairs(img_dir, ann_dir, "ade20k", "annotation")


class ADE20KDataset(PairedFileDataset):
    """ADE20K ``split`` at ``height x width`` (items as :class:`PairedFileDataset`, no instances)."""

    def __init__(self, root: str | Path, split: str = "train", height: int = 256, width: int = 256,
                 hflip: bool = False, max_items: int | None = None):
        triples = limit(ade20k_files(root, split), max_items)
        super().__init__(triples, get_class_space("ade20k"), height, width, hflip)
        self.root, self.split = Path(root), split
