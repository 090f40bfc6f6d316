"""One entry point for every data set: :func:`build_dataset`."""

from __future__ import annotations

from pathlib import Path

import torch

from gesco.errors import GescoInputError

DATASET_NAMES = ("synthetic", "cityscapes", "coco-stuff", "ade20k")


def build_dataset(name: str, root: str | Path | None, split: str, height: int, width: int,
                  **kw) -> torch.utils.data.Dataset:
    """Build a data set by name.

    Args:
        name: ``"synthetic"``, ``"cityscapes"``, ``"coco-stuff"`` or ``"ade20k"``.
        root: the data-set folder (ignored, and may be ``None``, for ``"synthetic"``).
        split: ``"train"``, ``"val"`` (and ``"test"`` for synthetic / Cityscapes).
        height, width: output size in pixels.
        **kw: passed on: ``hflip`` for all; ``size`` for synthetic; ``max_items`` for the
            real data sets; ``instances`` for Cityscapes.
    Returns:
        A ``torch.utils.data.Dataset`` with a ``class_space`` attribute whose items are
        dicts (see :mod:`gesco.data.transforms`).
    Raises:
        GescoInputError: unknown name, missing root; DatasetLayoutError (a
        GescoInputError and FileNotFoundError) when the root lacks the layout.
    """
    if name == "synthetic":
        from gesco.data.synthetic import SyntheticScenes

        return SyntheticScenes(split=split, height=height, width=width, **kw)
    if name not in DATASET_NAMES:
        raise GescoInputError(f"unknown data set {name!r}; known: {list(DATASET_NAMES)}")
    if root is None:
        raise GescoInputError(f"data set {name!r} needs a root folder")
    if name == "cityscapes":
        from gesco.data.cityscapes import CityscapesDataset

        return CityscapesDataset(root, split, height, width, **kw)
    if name == "coco-stuff":
        from gesco.data.coco_stuff import CocoStuffDataset

        return CocoStuffDataset(root, split, height, width, **kw)
    from gesco.data.ade20k import ADE20KDataset

    return ADE20KDataset(root, split, height, width, **kw)
