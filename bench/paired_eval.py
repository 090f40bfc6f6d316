"""Paired comparison of two ``gesco evaluate`` runs over the same scenes and seeds.

Reads the per-scene metrics of one row at one PSNR from each run's ``results.sqlite`` and
writes, per metric, both means and the paired difference (new - base; mean +- standard error
over the scenes both runs scored) to ``OUT/paired.json`` and ``OUT/paired.md``. With
``--bootstrap N`` (and the base run's ``real`` row) it adds the Frechet distance of each run's images
to the real ones (the evaluation's FD proxy) and its paired bootstrap standard error
(:func:`bench_finishing.fd_bootstrap`: the scenes resampled ``N`` times, the same draw for both runs
and the real images). Used for the re-fitted mean path against the shipped student and for the mean
temperature (docs/colour/README.md section 6):

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
from gesco.evaluate.store import ResultStore

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


def fd_paired(base: str, new: str, row: str, psnr: str, draws: int) -> dict:
    """FD proxy of both runs' ``row`` at ``psnr`` against the base run's real images, on the scenes all three
    share, with the paired bootstrap of ``new - base``."""
    def features(run: str, r: str, p: float | None) -> dict[int, np.ndarray]:
        with ResultStore(Path(run) / "results.sqlite") as store:
            idx, _, feats = store.load(r, p, 10**9)
        return dict(zip(idx, feats, strict=True))

    from bench_finishing import fd, fd_bootstrap  # a sibling script (bench/ is on the path when run as a script)

    real, a, b = features(base, "real", None), features(base, row, float(psnr)), features(new, row, float(psnr))
    scenes = sorted(set(real) & set(a) & set(b))
    if len(scenes) < 3:
        raise SystemExit(f"FD needs the base run's real row and both rows on >= 3 common scenes, got {len(scenes)}")
    stack = [np.stack([d[s] for s in scenes]).astype(np.float64) for d in (real, a, b)]
    boot = fd_bootstrap(stack[2], stack[1], stack[0], draws=draws)
    return {"base": fd(stack[1], stack[0]), "new": fd(stack[2], stack[0]), "diff": boot["mean"], "se": boot["se"],
            "n": len(scenes), "draws": draws}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--row", default="ours-fast")
    ap.add_argument("--psnr", default="100")
    ap.add_argument("--out", required=True)
    ap.add_argument("--bootstrap", type=int, default=0, metavar="N",
                    help="add the FD proxy with a paired bootstrap standard error over N resamplings (0: no FD)")
    args = ap.parse_args(argv)
    res = compare(per_scene(args.base, args.row, args.psnr), per_scene(args.new, args.row, args.psnr))
    if args.bootstrap:
        res["fd_proxy"] = fd_paired(args.base, args.new, args.row, args.psnr, args.bootstrap)
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
