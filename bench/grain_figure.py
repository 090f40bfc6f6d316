"""A picture of the sky finishing: real scene | receiver's image | image after the finishing.

Reads a cache of ``bench/grain_cache.py`` (validation scenes) and writes the first ``--rows``
scenes side by side, 2x nearest-neighbour enlarged, the finishing of
:func:`gesco.diffusion.finishing.sky_finishing` driven by the receiver's label map.

    python bench/grain_figure.py --cache /tmp/grain100.pt --sigma 1.5 --out docs/images/grain_finishing.png
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from gesco.diffusion.finishing import finish, sky_finishing
from gesco.diffusion.pipeline import SemanticGenerator


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", required=True)
    ap.add_argument("--sigma", type=float, default=1.5)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    c = torch.load(args.cache)
    x, real = c["images"][: args.rows], c["real"][: args.rows]
    done = finish(x, c["received"][: args.rows], sky_finishing(args.sigma))
    cols = [SemanticGenerator.to_uint8(t) for t in (real, x, done)]
    grid = np.concatenate([np.concatenate(row, axis=1) for row in zip(*cols, strict=True)], axis=0)
    grid = cv2.resize(grid, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    if not cv2.imwrite(args.out, grid[:, :, ::-1]):
        raise SystemExit(f"could not write {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
