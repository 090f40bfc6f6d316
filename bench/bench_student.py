"""Sampling time per 64x128 image: the guided teacher against the guidance-distilled student.

Interleaved (A B C D A B C D ...) on the same conditioning, batch 1, so a shared machine's
load changes hit every configuration alike; reports the median seconds per image and each
configuration's ratio to the guided model's setting (SDE-DPM-Solver++(2M), 20 steps = 40 passes;
the receiver's default until the student, timed here at 8 steps, replaced it). The labels keep
the word "default" for the guided row so that results stay comparable with earlier runs.

    python bench/bench_student.py                 # shipped teacher and student, 1 thread, 5 repeats
    python bench/bench_student.py --threads 2

Results: ``bench/results/student.json``. Quality of the same configurations:
docs/evaluation/samplers-distill/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gesco.data.synthetic import generate_scene
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator
from gesco.semantics.classes import get_class_space
from gesco.semantics.layout import full_conditioning

#: (label, checkpoint role, sampler, steps): the default first (the ratios' denominator)
CONFIGS = (
    ("teacher, dpmpp-2m-sde, 20 guided steps (default, 40 passes)", "teacher", "dpmpp-2m-sde", 20),
    ("teacher, dpmpp-2m-sde-ode-mean, 8 guided steps (16 passes)", "teacher", "dpmpp-2m-sde-ode-mean", 8),
    ("student, dpmpp-2m-sde-ode-mean, 8 steps (8 passes)", "student", "dpmpp-2m-sde-ode-mean", 8),
    ("student, dpmpp-2m-sde, 20 steps (20 passes)", "student", "dpmpp-2m-sde", 20),
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default=str(REPO / "checkpoints" / "diffusion-synthetic-64x128"))
    p.add_argument("--student", default=str(REPO / "checkpoints" / "diffusion-synthetic-64x128-student"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "student.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    gens = {"teacher": SemanticGenerator.load(args.teacher, device="cpu"),
            "student": SemanticGenerator.load(args.student, device="cpu")}
    space = get_class_space("cityscapes")
    h, w = gens["teacher"].resolution
    scene = generate_scene(3, h, w)
    cond = full_conditioning(scene.label, space, scene.instance)[None]  # (1, C + 1, H, W)
    times: dict[str, list[float]] = {c[0]: [] for c in CONFIGS}
    for r in range(args.repeats + 1):  # the first round warms up and is not counted
        for label, role, sampler, steps in CONFIGS:
            t0 = time.perf_counter()
            gens[role].generate(cond, SamplingSettings(sampler=sampler, steps=steps, seed=r))
            if r:
                times[label].append(time.perf_counter() - t0)
    base = statistics.median(times[CONFIGS[0][0]])
    rows = {label: {"median_s": round(statistics.median(v), 4), "runs_s": [round(x, 4) for x in v],
                    "ratio_to_default": round(statistics.median(v) / base, 3)} for label, v in times.items()}
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.processor() or platform.machine(),
              "threads": args.threads, "repeats": args.repeats, "batch": 1, "resolution": [h, w],
              "torch": torch.__version__, "teacher": args.teacher, "student": args.student, "configs": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for label, r in rows.items():
        print(f"{r['median_s']:7.3f} s/image  {r['ratio_to_default']:5.2f}x  {label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
