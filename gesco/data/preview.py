"""Preview grids of synthetic scenes: image rows above colour-coded label rows.

Run ``python -m gesco.data.preview OUT.png --height 64 --width 128 --seeds 0 1 2 3``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from gesco.data.synthetic import generate_scene
from gesco.semantics.classes import CITYSCAPES


def scene_grid(seeds: Sequence[int], height: int, width: int, columns: int = 4, gap: int = 2) -> np.ndarray:
    """A ``(rows, columns)`` grid of scenes; every scene row is followed by its label row.

    Returns:
        ``(H_grid, W_grid, 3)`` uint8 RGB, white gaps of ``gap`` pixels between tiles.
    """
    palette = CITYSCAPES.palette()
    seeds = list(seeds)
    n_rows = (len(seeds) + columns - 1) // columns
    gh = n_rows * 2 * (height + gap) - gap
    gw = columns * (width + gap) - gap
    grid = np.full((gh, gw, 3), 255, np.uint8)
    for i, seed in enumerate(seeds):
        s = generate_scene(seed, height, width)
        row, col = divmod(i, columns)
        y = row * 2 * (height + gap)
        x = col * (width + gap)
        grid[y:y + height, x:x + width] = s.image
        grid[y + height + gap:y + 2 * height + gap, x:x + width] = palette[s.label]
    return grid


def save_scene_grid(path: str | Path, seeds: Sequence[int], height: int = 64, width: int = 128,
                    columns: int = 4) -> Path:
    """Write :func:`scene_grid` as a PNG at ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = scene_grid(seeds, height, width, columns)
    if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out")
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    p.add_argument("--columns", type=int, default=4)
    a = p.parse_args(argv)
    print(save_scene_grid(a.out, a.seeds, a.height, a.width, a.columns))


if __name__ == "__main__":
    main()
