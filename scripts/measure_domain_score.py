"""Out-of-domain score of a segmenter: synthetic scenes (``--split``, default val) against real photos.

    pip install scikit-image          # only for this script: its bundled sample photos
    OMP_NUM_THREADS=1 python scripts/measure_domain_score.py [--scenes 100] [--segmenter PATH] [--aspect crop]

Scores each image the way the sender does (:func:`gesco.data.aspect.fit_aspect` to the model
resolution, then :func:`gesco.segment.domain.domain_report`): the mean max-softmax of the
segmenter over the upload's pixels. Synthetic scenes are scored clean, as JPEG (quality 75),
blurred (Gaussian sigma 1 px) and noisy (std 0.1 in [-1, 1]); the photos are scikit-image's
astronaut, coffee, chelsea and rocket (plus camera, coins and page as further non-street
images) and matplotlib's grace_hopper (the photo the tests use). Prints a markdown table.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from gesco.data.aspect import fit_aspect
from gesco.data.synthetic import generate_scene, split_seed
from gesco.segment import load_segmenter
from gesco.segment.domain import DEFAULT_DOMAIN_THRESHOLD, domain_report, segment_scored


def score(seg, image: np.ndarray, aspect: str) -> float:
    fitted, _, _, fit = fit_aspect(image, None, None, seg.resolution, aspect)
    _, conf = segment_scored(seg, fitted)
    return domain_report(conf, DEFAULT_DOMAIN_THRESHOLD, fit.content_mask()).score


def variants(image: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    ok, buf = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 75])
    noisy = image.astype(np.float32) + rng.normal(0, 0.1 * 127.5, image.shape)
    return {
        "clean": image,
        "JPEG q75": np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]),
        "blur sigma 1": cv2.GaussianBlur(image, (0, 0), 1.0),
        "noise std 0.1": np.clip(noisy, 0, 255).astype(np.uint8),
    }


def photos() -> dict[str, np.ndarray]:
    import skimage.data
    from matplotlib import cbook

    out = {}
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "page"):
        im = getattr(skimage.data, name)()
        if im.ndim == 2:
            im = np.repeat(im[:, :, None], 3, axis=2)
        out[name] = np.ascontiguousarray(im[:, :, :3].astype(np.uint8))
    bgr = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    out["grace_hopper (matplotlib)"] = np.ascontiguousarray(bgr[:, :, ::-1])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", type=int, default=100)
    p.add_argument("--split", default="val", choices=("val", "test"), help="synthetic split (default val)")
    p.add_argument("--segmenter", default=None)
    p.add_argument("--aspect", default="crop")
    args = p.parse_args()
    seg = load_segmenter(args.segmenter)
    rng = np.random.default_rng(0)
    table: dict[str, list[float]] = {}
    for i in range(args.scenes):
        scene = generate_scene(split_seed(args.split, i), *seg.resolution)
        for name, im in variants(scene.image, rng).items():
            table.setdefault(name, []).append(score(seg, im, args.aspect))
    print(f"segmenter: {seg.source}; threshold {DEFAULT_DOMAIN_THRESHOLD}; aspect {args.aspect}\n")
    print(f"| synthetic {args.split} scenes ({args.scenes}) | min | 5th pct | median | max | below threshold |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, v in table.items():
        a = np.asarray(v)
        print(f"| {name} | {a.min():.3f} | {np.percentile(a, 5):.3f} | {np.median(a):.3f} | {a.max():.3f} "
              f"| {int((a < DEFAULT_DOMAIN_THRESHOLD).sum())} |")
    print("\n| photo | size | score | out of domain |")
    print("| --- | --- | --- | --- |")
    for name, im in photos().items():
        s = score(seg, im, args.aspect)
        print(f"| {name} | {im.shape[1]}x{im.shape[0]} | {s:.3f} | {'yes' if s < DEFAULT_DOMAIN_THRESHOLD else 'no'} |")


if __name__ == "__main__":
    main()
