"""Paired comparison of one row between ``gesco evaluate`` output folders (same split and scenes).

Runs that differ in one setting (e.g. ``--edges uploaded`` / ``derived`` / ``none``) draw the
same channel noise and sampling noise for scene ``i`` (common random numbers,
:func:`gesco.evaluate.config.scene_seed`), so their per-scene difference is the effect of the
setting. For every PSNR both stores hold, this prints each run's mean and the paired
difference against the first run (mean +- standard error over the scenes), and writes them to
``--json``.

    python scripts/compare_runs.py uploaded=runs/val-default derived=runs/val-edges-derived \\
        none=runs/val-edges-none --row ours-fast --scenes 100 --json docs/evaluation/edges/edges.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gesco.evaluate.paired import paired_difference as paired
from gesco.evaluate.store import ResultStore

METRICS = ("miou", "lpips", "ssim", "mean_colour_error", "class_colour_error")


def load(folder: Path, row: str, scenes: int) -> tuple[dict, dict[float, dict[str, list]]]:
    """The plan of an output folder and ``{psnr: {metric: per-scene values}}`` of ``row`` (complete PSNRs only)."""
    with ResultStore(folder / "results.sqlite") as store:
        plan = store.get_meta("plan") or {}
        out = {}
        for psnr in plan.get("psnrs", []):
            idx, ms, _ = store.load(row, psnr, scenes)
            if idx == list(range(scenes)):
                out[float(psnr)] = {m: [x.get(m) for x in ms] for m in METRICS}
    return plan, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", metavar="NAME=FOLDER", help="output folders; the first is the baseline")
    ap.add_argument("--row", default="ours-fast")
    ap.add_argument("--scenes", type=int, required=True)
    ap.add_argument("--json", default=None, help="write the comparison here")
    args = ap.parse_args(argv)
    runs = [r.partition("=")[::2] for r in args.runs]
    if any(not name or not folder for name, folder in runs) or len(runs) < 2:
        raise SystemExit("give at least two NAME=FOLDER runs")
    loaded = {name: load(Path(folder), args.row, args.scenes) for name, folder in runs}
    base_name = runs[0][0]
    base_plan, base = loaded[base_name]
    for name, (plan, _) in loaded.items():
        if plan.get("split") != base_plan.get("split") or plan.get("seed") != base_plan.get("seed"):
            raise SystemExit(f"{name}: split/seed {plan.get('split')}/{plan.get('seed')} differ from "
                             f"{base_name}'s {base_plan.get('split')}/{base_plan.get('seed')}: not paired")
    result = {"row": args.row, "split": base_plan.get("split"), "scenes": args.scenes, "baseline": base_name,
              "runs": {name: {"folder": folder, "edges": loaded[name][0].get("edges", "uploaded")} for name, folder in runs},
              "psnrs": {}}
    lines = [f"{args.row}, {args.scenes} scenes of the {base_plan.get('split')} split; Δ = run - {base_name}, "
             "paired over the scenes (mean ± standard error)", "",
             "| PSNR (dB) | run | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for psnr in sorted(base, reverse=True):
        entry = {}
        for name, _ in runs:
            vals = loaded[name][1].get(psnr)
            if vals is None:
                continue
            means = {m: float(np.mean([v for v in vals[m] if v is not None])) for m in METRICS}
            diffs = {m: paired(vals[m], base[psnr][m]) for m in METRICS} if name != base_name else None
            entry[name] = {"mean": means, "minus_baseline": diffs}
            cells = [f"{means[m]:.3f}" if diffs is None else
                     f"{means[m]:.3f} (Δ {diffs[m]['mean']:+.3f} ± {diffs[m]['se']:.3f})" for m in METRICS]
            lines.append(f"| {psnr:g} | {name} | " + " | ".join(cells) + " |")
        result["psnrs"][f"{psnr:g}"] = entry
    print("\n".join(lines))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
