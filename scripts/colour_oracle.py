"""Colour oracle: how much colour error is irreducible from the maps alone.

The receiver sees the label map and nothing of the scene's lighting or paint. An image
painted from the maps alone cannot know more than the class of each pixel, so the error
of the best *class-wise constant* painting is a floor for what a model conditioned only
on class maps can reach on the per-class colour error (up to what the layout itself
says about a class's colour beyond its identity). This script measures it:

* **class-mean oracle** (from the maps only): every pixel gets the mean colour of its
  class over ``--fit-scenes`` scenes of the *train* split (the data-set class mean,
  pixel-weighted, 0-255 RGB);
* **class-mean + scene grey oracle** (the maps + the scene's exact mean grey level, about
  what a brightness side channel of a few bits would add): the class-mean image shifted so that its mean
  grey equals the sent scene's (one offset on all three channels, clipped to 0-255);
* **class-mean + scene mean-RGB oracle** (the maps + the scene's exact mean RGB, about a
  24-bit side channel): shifted per channel so that its mean RGB equals the sent scene's.

Each oracle image is scored against the sent scene exactly as ``gesco evaluate`` scores a
generated image (:class:`gesco.evaluate.scoring.Scorers`: segmenter mIoU, LPIPS, SSIM,
mean and class colour errors of :func:`gesco.evaluate.metrics.colour_errors`, Euclidean
distance of mean RGB, 0-255) on scenes ``0..N-1`` of the *validation* split. With
``--generated DIR`` (a ``gesco evaluate`` output folder on the same split and scenes) the
generated images' colour errors at each stored PSNR are put beside them, with the paired
per-scene difference (mean +- standard error).

    python scripts/colour_oracle.py --scenes 100 --fit-scenes 2000 \\
        --generated runs/val-default --row ours-fast --out docs/colour/oracle

Writes ``OUT/oracle.json`` and ``OUT/oracle.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from gesco.data.synthetic import generate_scene, split_seed
from gesco.data.transforms import image_to_tensor
from gesco.evaluate.config import EvalConfig
from gesco.evaluate.paired import finite_summary as _summary
from gesco.evaluate.paired import paired_difference as paired
from gesco.evaluate.scoring import load_scorers
from gesco.evaluate.store import ResultStore
from gesco.semantics.classes import CITYSCAPES

#: ITU-R BT.601 luma weights: the grey level of an RGB colour
GREY = np.array([0.299, 0.587, 0.114])
ORACLES = ("class-mean", "class-mean+grey", "class-mean+rgb")
METRICS = ("mean_colour_error", "class_colour_error", "lpips", "miou", "ssim")


def class_means(scenes: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-weighted mean RGB of every class over train-split scenes ``0..scenes-1``.

    Returns:
        ``(means (C, 3) float64 in 0-255, pixels (C,) int64)``; a class never seen gets the
        mean colour of all pixels.
    """
    c = CITYSCAPES.num_classes
    sums, counts = np.zeros((c, 3)), np.zeros(c, np.int64)
    for i in range(scenes):
        s = generate_scene(split_seed("train", i), height, width)
        ids = s.label.reshape(-1).astype(np.int64)
        rgb = s.image.reshape(-1, 3).astype(np.float64)
        counts += np.bincount(ids, minlength=c)
        for ch in range(3):
            sums[:, ch] += np.bincount(ids, weights=rgb[:, ch], minlength=c)
    overall = sums.sum(0) / counts.sum()
    means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], overall)
    return means, counts


def oracle_images(label: np.ndarray, sent: np.ndarray, means: np.ndarray) -> dict[str, np.ndarray]:
    """The three oracle paintings of one scene, ``(H, W, 3)`` float in 0-255 each (see the module
    doc; :func:`_u8` rounds and clips them)."""
    painted = means[label]  # (H, W, 3) float
    shift_rgb = sent.reshape(-1, 3).mean(0) - painted.reshape(-1, 3).mean(0)
    shift_grey = float(shift_rgb @ GREY)
    return {
        "class-mean": painted,
        "class-mean+grey": painted + shift_grey,
        "class-mean+rgb": painted + shift_rgb,
    }


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@torch.no_grad()  # scoped: a global switch would leak into the caller (tests import this script)
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=100, help="validation scenes scored (default 100)")
    ap.add_argument("--fit-scenes", type=int, default=2000, help="train scenes for the class means (default 2000)")
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--generated", default=None, help="a gesco evaluate --split val output folder to compare with")
    ap.add_argument("--row", default="ours-fast", help="its row (default ours-fast, the receiver's default)")
    ap.add_argument("--out", default="docs/colour/oracle")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    h, w = args.height, args.width
    means, counts = class_means(args.fit_scenes, h, w)
    scorers, described = load_scorers(EvalConfig(out=Path(args.out), split="val"), torch.device("cpu"), CITYSCAPES)

    per: dict[str, dict[str, list]] = {k: {m: [] for m in METRICS} for k in ORACLES}
    per_class: dict[str, dict[int, list[float]]] = {k: {} for k in ORACLES}
    for i in range(args.scenes):
        s = generate_scene(split_seed("val", i), h, w)
        imgs = oracle_images(s.label.astype(np.int64), s.image, means)
        batch = torch.stack([image_to_tensor(_u8(imgs[k])) for k in ORACLES])
        real = image_to_tensor(s.image)[None].expand(len(ORACLES), -1, -1, -1)
        labels = torch.from_numpy(s.label.astype(np.int64))[None].expand(len(ORACLES), -1, -1)
        metrics, _ = scorers.score(batch, real, labels)
        for k, m in zip(ORACLES, metrics, strict=True):
            for name in METRICS:
                per[k][name].append(m[name])
            for cid, (err, _) in m["class_colour"].items():
                per_class[k].setdefault(int(cid), []).append(err)

    result = {
        "split": "val", "scenes": args.scenes, "fit_split": "train", "fit_scenes": args.fit_scenes,
        "resolution": [h, w], "machine": f"the project's {os.cpu_count()}-core {platform.machine()} CPU VM",
        "torch_threads": torch.get_num_threads(), "seconds": None,
        "scorers": described,
        "class_means": {CITYSCAPES.names[c]: [round(float(v), 2) for v in means[c]]
                        for c in range(len(means)) if counts[c] > 0},
        "oracles": {k: {name: _summary(per[k][name]) for name in METRICS} for k in ORACLES},
        "oracle_per_class": {k: {str(c): _summary(v) for c, v in sorted(per_class[k].items())} for k in ORACLES},
        "per_scene": per,
        "generated": {},
    }
    if args.generated:
        with ResultStore(Path(args.generated) / "results.sqlite") as store:
            plan = store.get_meta("plan") or {}
            if plan.get("split") != "val":
                raise SystemExit(f"{args.generated} is not a validation-split run (split {plan.get('split')!r})")
            for psnr in plan.get("psnrs", []):
                idx, ms, _ = store.load(args.row, psnr, args.scenes)
                if idx != list(range(args.scenes)):
                    print(f"skipping {args.row} at {psnr:g} dB: {len(idx)} of {args.scenes} scenes stored")
                    continue
                gen = {name: [m.get(name) for m in ms] for name in METRICS}
                result["generated"][f"{psnr:g}"] = {
                    "row": args.row, "edges": plan.get("edges", "uploaded"),
                    "summary": {name: _summary(gen[name]) for name in METRICS},
                    "minus_oracle": {k: {name: paired(gen[name], per[k][name]) for name in
                                         ("mean_colour_error", "class_colour_error")} for k in ORACLES},
                }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "oracle.json").write_text(json.dumps(result, indent=1))
    (out / "oracle.md").write_text(markdown(result))
    print((out / "oracle.md").read_text())
    return 0


def markdown(r: dict) -> str:
    """The results as a markdown page (tables of means +- std, paired differences +- SE)."""
    lines = [
        "# Colour oracle: the colour error that the maps alone leave",
        "",
        f"{r['scenes']} scenes of the `val` split at {r['resolution'][0]}x{r['resolution'][1]}; class means "
        f"from {r['fit_scenes']} `train` scenes; scored as `gesco evaluate` scores (0-255 colour errors, "
        f"segmenter `{r['scorers']['segmenter']}`). Made by `scripts/colour_oracle.py` in {r['seconds']:.0f} s "
        f"({r['machine']}, {r['torch_threads']} torch threads).",
        "",
        "| painting | what it knows | mean colour error | class colour error | LPIPS | mIoU | SSIM |",
        "|---|---|---|---|---|---|---|",
    ]
    knows = {"class-mean": "the maps", "class-mean+grey": "the maps + the scene's exact mean grey",
             "class-mean+rgb": "the maps + the scene's exact mean RGB"}

    def cell(s: dict, nd: int = 1) -> str:
        return f"{s['mean']:.{nd}f} ± {s['std']:.{nd}f}"

    for k, o in r["oracles"].items():
        lines.append(f"| {k} | {knows[k]} | {cell(o['mean_colour_error'])} | {cell(o['class_colour_error'])} | "
                     f"{cell(o['lpips'], 3)} | {cell(o['miou'], 3)} | {cell(o['ssim'], 3)} |")
    for psnr, g in r["generated"].items():
        s = g["summary"]
        lines.append(f"| generated: `{g['row']}` at {psnr} dB (edges {g['edges']}) | the maps (+ noise) | "
                     f"{cell(s['mean_colour_error'])} | {cell(s['class_colour_error'])} | {cell(s['lpips'], 3)} | "
                     f"{cell(s['miou'], 3)} | {cell(s['ssim'], 3)} |")
    lines += ["", "± : standard deviation over scenes."]
    if r["generated"]:
        lines += ["", "Generated minus oracle, paired over the same scenes (mean ± standard error):", "",
                  "| PSNR | oracle | Δ mean colour error | Δ class colour error |", "|---|---|---|---|"]
        for psnr, g in r["generated"].items():
            for k, d in g["minus_oracle"].items():
                a, b = d["mean_colour_error"], d["class_colour_error"]
                lines.append(f"| {psnr} dB | {k} | {a['mean']:+.1f} ± {a['se']:.1f} | {b['mean']:+.1f} ± {b['se']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
