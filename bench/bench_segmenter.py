"""Segmenter: speed per 64x128 image and mIoU on test-split synthetic scenes (clean, blurred, noisy).

Usage:
    OMP_NUM_THREADS=1 python bench/bench_segmenter.py                       # the shipped checkpoint
    OMP_NUM_THREADS=1 python bench/bench_segmenter.py --spec my_model.pt --scenes 500 \
        --out bench/results/segmenter.json

mIoU: :class:`gesco.evaluate.metrics.miou.MeanIoU` over the Cityscapes eval ids, one
confusion matrix over all scenes. Speed: median wall-clock and CPU (process) time over
repeats, on one thread, at batch 1 and batch 32; the host's load average is recorded
(on a shared machine other processes slow the wall-clock timings down).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from gesco.segment import load_segmenter
from gesco.segment.evaluate import ROBUSTNESS_CORRUPTIONS, score
from gesco.segment.model import count_parameters
from gesco.segment.train import load_pool


def _timing(fn, x: torch.Tensor, repeats: int) -> dict:
    fn(x)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(x)
        wall.append((time.perf_counter() - t0) / len(x) * 1000)
        cpu.append((time.process_time() - c0) / len(x) * 1000)
    return {"wall_ms_per_image": round(statistics.median(wall), 2), "cpu_ms_per_image": round(statistics.median(cpu), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=None, help="segmenter: default, a gesco checkpoint, .pt/.ts/.pt2 or .onnx")
    ap.add_argument("--scenes", type=int, default=500, help="test-split scenes to score")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seg = load_segmenter(args.spec)
    h, w = seg.resolution
    res: dict = {"segmenter": repr(seg), "threads": 1, "load_average": os.getloadavg()}
    if isinstance(seg.model, torch.nn.Module):
        res["parameters"] = count_parameters(seg.model)
    x1, x32 = torch.rand(1, 3, h, w) * 2 - 1, torch.rand(32, 3, h, w) * 2 - 1
    res["speed_batch1"] = _timing(seg.predict, x1, args.repeats)
    res["speed_batch32"] = _timing(seg.predict, x32, max(3, args.repeats // 4))
    images, labels = load_pool("synthetic", None, "test", args.scenes, h, w)
    clean = score(seg.predict, images, labels, seg.class_space)
    res["test_scenes"] = len(images)
    res["miou"] = round(clean.miou, 4)
    res["per_class"] = {k: (None if v is None else round(v, 4)) for k, v in clean.as_dict()["per_class"].items()}
    res["robustness"] = {name: round(score(seg.predict, images, labels, seg.class_space, c).miou, 4)
                         for name, c in ROBUSTNESS_CORRUPTIONS.items()}
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
