"""Cityscapes (fine annotations) in its official on-disk layout.

::

    root/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    root/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png
    root/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_instanceIds.png

Labels are the 34 Cityscapes *label ids* (0..33) in a 35-id class space (as SDM's
``label_nc = 35``); instance ids follow Cityscapes (``label_id * 1000 + k`` on things,
the label id elsewhere). The paper's experiments resize to 256x512, labels nearest.
"""

from __future__ import annotations

from pathlib import Path

from gesco.data.files import DatasetLayoutError, FileTriple, PairedFileDataset, check_split, limit, require_dir
from gesco.semantics.classes import get_class_space

SPLIT_DIRS = {"train": "train", "val": "val", "test": "test"}
_IMAGE_SUFFIX = "_leftImg8bit.png"


def cityscapes_files(root: str | Path, split: str, instances: bool = True) -> list[FileTriple]:
    """All samples of a split, sorted by name.

    Raises:
        DatasetLayoutError: a directory or the label / instance file of an image is missing,
            or the split has no images.
    """
    root = Path(root)
    folder = check_split(split, SPLIT_DIRS, "cityscapes")
    img_dir = require_dir(root / "leftImg8bit" / folder, "cityscapes images")
    gt_dir = require_dir(root / "gtFine" / folder, "cityscapes fine labels")
    triples = []
    for img in sorted(img_dir.glob(f"*/*{_IMAGE_SUFFIX}")):
        stem = img.name[: -len(_IMAGE_SUFFIX)]
        city = img.parent.name
        label = gt_dir / city / f"{stem}_gtFine_labelIds.png"
        if not label.is_file():
            raise DatasetLayoutError(f"cityscapes: label map {label} for image {img} is missing")
        inst = None
        if instances:
            inst = gt_dir / city / f"{stem}_gtFine_instanceIds.png"
            if not inst.is_file():
                raise DatasetLayoutError(f"cityscapes: instance map {inst} for image {img} is missing "
                                         "(pass instances=False to load without instances)")
        triples.append(FileTriple(name=stem, image=img, label=label, instance=inst))
    if not triples:
        raise DatasetLayoutError(f"cityscapes: no *{_IMAGE_SUFFIX} files under {img_dir}/<city>/")
    return triples


class CityscapesDataset(PairedFileDataset):
    """Cityscapes ``split`` at ``height x width`` (items as :class:`PairedFileDataset`)."""

    def __init__(self, root: str | Path, split: str = "train", height: int = 256, width: int = 512,
                 hflip: bool = False, instances: bool = True, max_items: int | None = None):
        triples = limit(cityscapes_files(root, split, instances), max_items)
        super().__init__(triples, get_class_space("cityscapes"), height, width, hflip)
        self.root, self.split = Path(root), split
