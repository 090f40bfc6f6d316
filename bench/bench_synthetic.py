"""Synthetic street scenes: generation time per scene and class statistics.

For each resolution, generate scenes ``0..n-1`` on one thread and report the median
over repeats of the wall-clock and CPU (process) time per scene; for 64x128 also the
number of classes per scene, how often each class appears, and instances per scene.

Usage:
    OMP_NUM_THREADS=1 python bench/bench_synthetic.py
    OMP_NUM_THREADS=1 python bench/bench_synthetic.py --scenes 500 --out bench/results/synthetic.json

The host's load average is recorded: on a shared machine other processes slow the
timings down (the CPU time is less affected than the wall-clock time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from gesco.data.synthetic import SYNTHETIC_THING_IDS, generate_scene
from gesco.semantics.classes import CITYSCAPES


def time_scenes(n: int, height: int, width: int, repeats: int) -> dict:
    generate_scene(0, height, width)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        for seed in range(n):
            generate_scene(seed, height, width)
        wall.append((time.perf_counter() - t) / n * 1e3)
        cpu.append((time.process_time() - c) / n * 1e3)
    return {"wall_ms_per_scene": round(statistics.median(wall), 3),
            "cpu_ms_per_scene": round(statistics.median(cpu), 3)}


def class_stats(n: int, height: int, width: int) -> dict:
    counts, present, things = [], np.zeros(CITYSCAPES.num_classes), []
    for seed in range(n):
        s = generate_scene(seed, height, width)
        ids = np.unique(s.label)
        counts.append(len(ids))
        present[ids] += 1
        things.append(sum(len(np.unique(s.instance[s.label == t])) for t in SYNTHETIC_THING_IDS))
    return {
        "classes_per_scene": {"mean": round(float(np.mean(counts)), 2), "min": int(np.min(counts)),
                              "p10": float(np.percentile(counts, 10)), "median": float(np.median(counts)),
                              "max": int(np.max(counts))},
        "instances_per_scene_mean": round(float(np.mean(things)), 2),
        "fraction_of_scenes_with_class": {CITYSCAPES.names[i]: round(present[i] / n, 3)
                                          for i in range(CITYSCAPES.num_classes) if present[i] > 0},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    result = {
        "host": platform.node(), "python": platform.python_version(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "load_average_before": os.getloadavg(),
        "timing": {f"{h}x{w}": time_scenes(a.scenes if h <= 64 else max(20, a.scenes // 5), h, w, a.repeats)
                   for h, w in ((64, 128), (128, 256), (256, 512))},
        "stats_64x128": class_stats(a.scenes, 64, 128),
        "load_average_after": os.getloadavg(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
