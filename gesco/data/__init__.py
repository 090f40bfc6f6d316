"""Data: procedural synthetic street scenes and loaders for Cityscapes, COCO-Stuff and ADE20K.

Every data set yields dicts with ``"image"`` (float32 ``(3, H, W)`` in ``[-1, 1]``),
``"label"`` (int64 ``(H, W)``) and, where known, ``"instance"`` (int64 ``(H, W)``);
see :mod:`gesco.data.transforms`.
"""

from gesco.data.factory import DATASET_NAMES, build_dataset
from gesco.data.files import DatasetLayoutError
from gesco.data.synthetic import (
    SPLITS,
    SYNTHETIC_LABEL_IDS,
    SYNTHETIC_THING_IDS,
    SceneSample,
    SyntheticScenes,
    generate_scene,
    split_seed,
)

__all__ = [
    "DATASET_NAMES",
    "DatasetLayoutError",
    "build_dataset",
    "SPLITS",
    "SYNTHETIC_LABEL_IDS",
    "SYNTHETIC_THING_IDS",
    "SceneSample",
    "SyntheticScenes",
    "generate_scene",
    "split_seed",
]
