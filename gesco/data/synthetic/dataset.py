"""The synthetic data set: a split's first scenes as arrays (:func:`render_scenes`, optionally
cached on disk) and as a torch ``Dataset`` (:class:`SyntheticScenes`)."""


from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gesco.data.synthetic.generate import SPLITS, check_size, generate_scene, split_seed
from gesco.data.transforms import make_item, random_flip
from gesco.errors import GescoInputError
from gesco.semantics.classes import CITYSCAPES, ClassSpace

#: Bumped whenever a change to the generator changes its output; part of cache file names.
GENERATOR_VERSION = 2


def render_scenes(split: str, size: int, height: int, width: int) -> dict[str, np.ndarray]:
    """Scenes ``0..size-1`` of ``split`` as stacked arrays.

    Returns:
        ``{"image": (N, H, W, 3) uint8, "label": (N, H, W) uint8,
        "instance": (N, H, W) uint16}`` (instance ids are at most ``33 * 1000 + k``).
    """
    images = np.empty((size, height, width, 3), np.uint8)
    labels = np.empty((size, height, width), np.uint8)
    instances = np.empty((size, height, width), np.uint16)
    for i in range(size):
        scene = generate_scene(split_seed(split, i), height, width)
        if scene.instance.max() > np.iinfo(np.uint16).max:
            raise RuntimeError(f"scene {i} of {split}: instance id {scene.instance.max()} does not fit uint16")
        images[i], labels[i], instances[i] = scene.image, scene.label, scene.instance
    return {"image": images, "label": labels, "instance": instances}


class SyntheticScenes(torch.utils.data.Dataset):
    """The first ``size`` scenes of a split, generated on the fly or cached.

    Item ``i`` is :func:`generate_scene` (``split_seed(split, i)``) as a dict:
    ``"image"`` float32 ``(3, H, W)`` in ``[-1, 1]``, ``"label"`` int64 ``(H, W)``
    (Cityscapes label ids), ``"instance"`` int64 ``(H, W)``, ``"seed"`` int. With
    ``hflip=True`` each item is flipped left-right with probability 1/2 (torch's RNG).

    ``cache``: ``False`` generates every item when it is read; ``True`` renders all
    ``size`` scenes once, in memory, at construction; a directory path does the same but
    keeps the arrays as ``.npy`` files there (named by split, size, resolution and
    :data:`GENERATOR_VERSION`) and memory-maps them on later runs -- cheap to share
    with DataLoader worker processes.
    """

    class_space: ClassSpace = CITYSCAPES

    def __init__(self, split: str = "train", size: int = 10000, height: int = 64, width: int = 128,
                 hflip: bool = False, cache: bool | str | Path = False):
        if split not in SPLITS:
            raise GescoInputError(f"unknown split {split!r}; known: {sorted(SPLITS)}")
        start, stop = SPLITS[split]
        if not isinstance(size, (int, np.integer)) or not 1 <= size <= stop - start:
            raise GescoInputError(f"size must be an int in [1, {stop - start}] for split {split!r}, got {size!r}")
        self.split, self.size = split, int(size)
        self.height, self.width = check_size("height", height), check_size("width", width)
        self.hflip = hflip
        self.arrays: dict[str, np.ndarray] | None = None
        if cache is True:
            self.arrays = render_scenes(split, self.size, self.height, self.width)
        elif cache is not False:
            self.arrays = self._load_or_render(Path(cache))

    def _load_or_render(self, folder: Path) -> dict[str, np.ndarray]:
        stem = f"synthetic_v{GENERATOR_VERSION}_{self.split}_{self.size}_{self.height}x{self.width}"
        paths = {k: folder / f"{stem}_{k}.npy" for k in ("image", "label", "instance")}
        if not all(p.is_file() for p in paths.values()):
            folder.mkdir(parents=True, exist_ok=True)
            for k, arr in render_scenes(self.split, self.size, self.height, self.width).items():
                tmp = paths[k].with_suffix(".tmp.npy")
                np.save(tmp, arr)
                tmp.replace(paths[k])  # atomic: a half-written cache is never picked up
        return {k: np.load(p, mmap_mode="r") for k, p in paths.items()}

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        if not isinstance(index, (int, np.integer)) or not -self.size <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} scenes")
        index = int(index) % self.size
        seed = split_seed(self.split, index)
        if self.arrays is not None:
            image, label = self.arrays["image"][index], self.arrays["label"][index]
            instance = self.arrays["instance"][index]
        else:
            scene = generate_scene(seed, self.height, self.width)
            image, label, instance = scene.image, scene.label, scene.instance
        item = make_item(image, label, instance, flip=self.hflip and random_flip())
        item["seed"] = seed
        return item
