"""Paired comparison of two ``gesco evaluate`` runs over the same scenes and seeds.

Reads the per-scene metrics of one row at one PSNR from each run's ``results.sqlite`` and
writes, per metric, both means and the paired difference (new - base; mean +- standard error
over the scenes both runs scored) to ``OUT/paired.json`` and ``OUT/paired.md``. Used for the
re-fitted mean path against the shipped student (docs/colour/README.md section 6):

    python bench/paired_eval.py --base runs/meanpath-val/shipped --new runs/meanpath-val/meanfit \
        --row ours-fast --psnr 100 --out bench/results/mean_path_val
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

import numpy as np

from gesco.evaluate.paired import paired_difference

METRICS = ("miou", "lpips", "ssim", "mean_colour_error", "class_colour_error")


def per_scene(run: str, row: str, psnr: str) -> dict[int, dict]:
    """Scene index -> its metrics dict, from ``RUN/results.sqlite``."""
    con = sqlite3.connect(Path(run) / "results.sqlite")
    try:
        rows = con.execute("select scene, metrics from results where row = ? and psnr = ?", (row, psnr)).fetchall()
    finally:
        con.close()
    if not rows:
        raise SystemExit(f"{run}: no results for row {row!r} at PSNR {psnr}")
    return {int(s): json.loads(m) for s, m in rows}


def compare(base: dict[int, dict], new: dict[int, dict]) -> dict[str, dict]:
    scenes = sorted(set(base) & set(new))
    out = {}
    for k in METRICS:
        a = np.array([base[s][k] for s in scenes], dtype=np.float64)
        b = np.array([new[s][k] for s in scenes], dtype=np.float64)
        d = paired_difference(b, a)
        out[k] = {"base": float(a.mean()), "new": float(b.mean()), "diff": d["mean"], "se": d["se"], "n": d["n"]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--row", default="ours-fast")
    ap.add_argument("--psnr", default="100")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    res = compare(per_scene(args.base, args.row, args.psnr), per_scene(args.new, args.row, args.psnr))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "paired.json").write_text(json.dumps({"base": args.base, "new": args.new, "row": args.row,
                                                 "psnr": args.psnr, "metrics": res}, indent=1) + "\n")
    lines = [f"# Paired: {args.new} against {args.base}", "",
             f"Row `{args.row}`, PSNR {args.psnr} dB; diff = new - base, mean +- standard error over the scenes.", "",
             "| metric | base | new | diff | n |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['base']:.4f} | {v['new']:.4f} | {v['diff']:+.4f} +- {v['se']:.4f} | {v['n']} |"
              for k, v in res.items()]
    (out / "paired.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
