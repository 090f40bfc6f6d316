"""One scene per seed (:func:`generate_scene`) and the seed ranges of the splits (:func:`split_seed`)."""


from __future__ import annotations

import numpy as np

from gesco.data.synthetic.builder import SceneBuilder
from gesco.data.synthetic.draws import Draws
from gesco.data.synthetic.scene import SceneSample
from gesco.errors import GescoInputError, ShapeError

MIN_SIZE = 16  # smallest height / width accepted by generate_scene
MAX_SIZE = 4096


def check_size(name: str, v: object) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
        raise GescoInputError(f"{name} must be an int, got {type(v).__name__}")
    if not MIN_SIZE <= v <= MAX_SIZE:
        raise ShapeError(f"{name} must be in [{MIN_SIZE}, {MAX_SIZE}] pixels, got {v}")
    return int(v)


def generate_scene(seed: int, height: int = 64, width: int = 128) -> SceneSample:
    """Draw synthetic street scene number ``seed`` at ``height x width`` pixels.

    Args:
        seed: non-negative int; the same seed (and size) always gives the same scene,
            and the same seed at another size gives the same layout.
        height, width: image size in pixels, each in ``[16, 4096]``.
    Returns:
        :class:`SceneSample` with ``image (H, W, 3) uint8``, ``label (H, W) uint8``
        (Cityscapes label ids) and ``instance (H, W) int32``.
    Raises:
        GescoInputError: ``seed`` is not a non-negative int;
        ShapeError: ``height`` or ``width`` is out of range.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise GescoInputError(f"seed must be a non-negative int, got {seed!r}")
    height, width = check_size("height", height), check_size("width", width)
    layout_seq, noise_seq = np.random.SeedSequence(int(seed)).spawn(2)
    builder = SceneBuilder(Draws(np.random.default_rng(layout_seq)), height, width)
    builder.build()
    return builder.canvas.render(np.random.default_rng(noise_seq), builder.lighting_gain())


# --------------------------------------------------------------------------- splits and data set
#: Disjoint seed ranges ``[start, stop)`` of the three splits.
SPLITS: dict[str, tuple[int, int]] = {
    "train": (0, 1_000_000),
    "val": (1_000_000, 1_100_000),
    "test": (2_000_000, 2_100_000),
}


def split_seed(split: str, index: int) -> int:
    """The scene seed of item ``index`` of ``split`` (``SPLITS[split][0] + index``).

    Raises:
        GescoInputError: unknown split, or ``index`` outside the split's range.
    """
    if split not in SPLITS:
        raise GescoInputError(f"unknown split {split!r}; known: {sorted(SPLITS)}")
    start, stop = SPLITS[split]
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or not 0 <= index < stop - start:
        raise GescoInputError(f"index must be an int in [0, {stop - start}) for split {split!r}, got {index!r}")
    return start + int(index)
