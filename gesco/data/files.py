"""Reading image / label-map file pairs from disk: the common part of the real data sets.

:class:`PairedFileDataset` holds a sorted list of :class:`FileTriple` (image, label map,
optional instance map) and turns each into the standard item dict of
:mod:`gesco.data.transforms`, resized to ``height x width`` (images area / bilinear,
maps nearest) and optionally flipped. The data-set modules (:mod:`.cityscapes`,
:mod:`.coco_stuff`, :mod:`.ade20k`) only find the files and say how raw label values
map to class ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from gesco.data.transforms import make_item, random_flip, resize_image, resize_labels
from gesco.errors import GescoInputError, ImageDecodeError, ShapeError
from gesco.semantics.classes import ClassSpace


class DatasetLayoutError(GescoInputError, FileNotFoundError):
    """A data-set root does not have the expected directory layout or files."""


@dataclass(frozen=True)
class FileTriple:
    """One sample on disk: an RGB image, its label map and (optionally) its instance map."""

    name: str
    image: Path
    label: Path
    instance: Path | None = None


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a directory, else raise :class:`DatasetLayoutError` naming it."""
    if not path.is_dir():
        raise DatasetLayoutError(f"{what}: expected directory {path} does not exist")
    return path


def check_split(split: str, known: dict[str, str], dataset: str) -> str:
    """Map a split name (``"train"``, ``"val"``, ...) to the data set's folder name."""
    if split not in known:
        raise GescoInputError(f"{dataset}: unknown split {split!r}; known: {sorted(known)}")
    return known[split]


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB (greyscale is expanded to 3 channels)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageDecodeError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_map(path: Path) -> np.ndarray:
    """Read a label or instance PNG as a 2-D integer array, unchanged (8 or 16 bit)."""
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise ImageDecodeError(f"cannot read label map {path}")
    if m.ndim == 3:  # a label map saved as RGB with equal channels
        if not (np.array_equal(m[..., 0], m[..., 1]) and np.array_equal(m[..., 0], m[..., 2])):
            raise ShapeError(f"label map {path} has {m.shape[2]} differing channels; expected one channel")
        m = m[..., 0]
    return m


class PairedFileDataset(torch.utils.data.Dataset):
    """Items from a list of :class:`FileTriple`.

    Args:
        triples: the samples, in a fixed (sorted) order.
        class_space: the data set's class space (``self.class_space``).
        height, width: output size in pixels.
        hflip: flip each item left-right with probability 1/2 (torch's RNG).
        remap: maps the raw label array to class ids (e.g. COCO-Stuff 255 -> 182);
            the result must lie in ``[0, class_space.num_classes)``.
    Item: ``"image"`` float32 ``(3, H, W)`` in ``[-1, 1]``, ``"label"`` int64 ``(H, W)``,
    ``"instance"`` int64 ``(H, W)`` when the triples have instance maps, ``"name"`` str.
    """

    def __init__(self, triples: list[FileTriple], class_space: ClassSpace, height: int, width: int,
                 hflip: bool = False, remap: Callable[[np.ndarray], np.ndarray] | None = None):
        for name, v in (("height", height), ("width", width)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ShapeError(f"{name} must be a positive int, got {v!r}")
        self.triples = list(triples)
        self.class_space = class_space
        self.height, self.width = int(height), int(width)
        self.hflip = hflip
        self.remap = remap

    def __len__(self) -> int:
        return len(self.triples)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The resized ``(image uint8 (H, W, 3), label (H, W), instance (H, W) or None)`` of item ``index``."""
        t = self.triples[index]
        image = read_rgb(t.image)
        label = read_map(t.label)
        if label.shape != image.shape[:2]:
            raise ShapeError(f"{t.label} is {label.shape} but image {t.image} is {image.shape[:2]}")
        if self.remap is not None:
            label = self.remap(label)
        self.class_space.check_ids(label, what=str(t.label))
        instance = None
        if t.instance is not None:
            instance = read_map(t.instance).astype(np.int64)
            if instance.shape != label.shape:
                raise ShapeError(f"{t.instance} is {instance.shape} but the label map is {label.shape}")
            instance = resize_labels(instance, self.height, self.width)
        image = resize_image(image, self.height, self.width)
        label = resize_labels(label, self.height, self.width)
        return image, label, instance

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = int(index) % len(self)
        image, label, instance = self.load(index)
        item = make_item(image, label, instance, flip=self.hflip and random_flip())
        item["name"] = self.triples[index].name
        return item


def jpg_png_pairs(img_dir: Path, label_dir: Path, dataset: str, what: str) -> list[FileTriple]:
    """``*.jpg`` images of ``img_dir`` paired with the ``<stem>.png`` of ``label_dir``, sorted by name.

    An image without its ``what`` (e.g. "label map") or an empty folder is a :class:`DatasetLayoutError`.
    """
    triples = []
    for img in sorted(img_dir.glob("*.jpg")):
        label = label_dir / f"{img.stem}.png"
        if not label.is_file():
            raise DatasetLayoutError(f"{dataset}: {what} {label} for image {img} is missing")
        triples.append(FileTriple(name=img.stem, image=img, label=label))
    if not triples:
        raise DatasetLayoutError(f"{dataset}: no *.jpg files in {img_dir}")
    return triples


def limit(triples: list[FileTriple], max_items: int | None) -> list[FileTriple]:
    """The first ``max_items`` triples (all when ``None``)."""
    if max_items is None:
        return triples
    if max_items < 1:
        raise GescoInputError(f"max_items must be >= 1, got {max_items}")
    return triples[:max_items]

