"""Table 5 (noisy training x FDS) from one ``gesco evaluate`` store: the rows, and whether the
paper's ordering holds at each PSNR, by paired differences.

The four rows of the paper's Table 5 (section 4.3) are ``gesco evaluate``'s

* ``ours``: noisy-trained model, FDS at inference (the paper's "both");
* ``no-fds``: the same model without FDS at inference ("noisy training only");
* ``no-noisy``: the clean-trained model (checkpoint role ``clean``) with FDS ("FDS only");
* ``neither``: the clean-trained model without FDS.

The paper claims ``both`` is best and each ablation better than ``neither``, i.e. five
orderings (:data:`ORDERINGS`). Every row samples scene ``i`` with the same channel noise and
sampling seed (:func:`gesco.evaluate.config.scene_seed`), so each ordering is tested on the
per-scene differences ``d_i = better_i - worse_i`` (:func:`gesco.evaluate.paired.paired_difference`,
mean +- standard error), signed so that a positive value means "as the paper says"
(``mIoU_a - mIoU_b``; ``LPIPS_b - LPIPS_a``). The Frechet distance is one number per set of
images, so its difference gets a paired bootstrap standard error: ``--bootstrap`` resamplings
of the scenes, the same draw for both rows and the real images.

Verdict per ordering and metric: ``holds`` when the signed difference exceeds 2 standard
errors, ``reversed`` when it is below -2, ``not resolved`` otherwise. The paper's ordering
holds at a PSNR when all five orderings hold on mIoU and LPIPS.

    python scripts/table5_ordering.py runs/table5 --scenes 100 --psnr 1 5 10 \\
        --json docs/evaluation/table5/ordering.json --md docs/evaluation/table5/ordering.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from gesco.evaluate.paired import finite_summary, paired_difference
from gesco.evaluate.report.statistics import frechet_of_features
from gesco.evaluate.store import ResultStore

#: the rows, with the paper's names
ROWS: dict[str, str] = {"ours": "both (noisy training + FDS)", "no-fds": "noisy training only",
                        "no-noisy": "FDS only", "neither": "neither"}
#: the paper's claims: (better, worse)
ORDERINGS: tuple[tuple[str, str], ...] = (("ours", "no-noisy"), ("ours", "no-fds"), ("ours", "neither"),
                                          ("no-noisy", "neither"), ("no-fds", "neither"))
#: metric -> +1 when higher is better, -1 when lower is better
METRICS = {"miou": +1, "lpips": -1}
VERDICT_SE = 2.0


def verdict(mean: float, se: float) -> str:
    """``holds`` / ``reversed`` / ``not resolved`` for a difference signed as the paper's claim."""
    if not np.isfinite(mean) or not np.isfinite(se):
        return "not resolved"
    if mean > VERDICT_SE * se:
        return "holds"
    if mean < -VERDICT_SE * se:
        return "reversed"
    return "not resolved"


def load_cells(folder: Path, scenes: int, psnrs: list[float] | None = None
               ) -> tuple[dict[str, Any], np.ndarray, dict[float, dict[str, dict]]]:
    """The store's plan, the real images' features ``(scenes, D)`` and, per PSNR (``psnrs``, or
    the last run's plan) and row, its per-scene metrics and features (absent when the cell is
    incomplete)."""
    with ResultStore(folder / "results.sqlite") as store:
        plan = store.get_meta("plan") or {}
        real_idx, _, real_feats = store.load("real", None, scenes)
        if real_idx != list(range(scenes)):
            raise SystemExit(f"{folder}: the real row has {len(real_idx)} of {scenes} scenes")
        cells: dict[float, dict[str, dict]] = {}
        for psnr in psnrs if psnrs is not None else plan.get("psnrs", []):
            cells[float(psnr)] = {}
            for row in ROWS:
                idx, ms, feats = store.load(row, psnr, scenes)
                if idx == list(range(scenes)):
                    cells[float(psnr)][row] = {"metrics": ms, "features": feats}
    return plan, real_feats, cells


def fd_bootstrap(real: np.ndarray, feats: dict[str, np.ndarray], reps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Per row, its Frechet distance to the real images on ``reps`` resamplings of the scenes
    (the same resampling for every row and the real set)."""
    rng = np.random.default_rng(seed)
    n = real.shape[0]
    out: dict[str, list[float]] = {r: [] for r in feats}
    for _ in range(reps):
        i = rng.integers(0, n, n)
        for r, f in feats.items():
            out[r].append(frechet_of_features(f[i], real[i]))
    return {r: np.array(v) for r, v in out.items()}


def psnr_summary(cell: dict[str, dict], real: np.ndarray, reps: int) -> dict[str, Any]:
    """Rows and orderings at one PSNR (only the rows present in ``cell``)."""
    vals = {r: {m: [x.get(m) for x in c["metrics"]] for m in METRICS} for r, c in cell.items()}
    rows = {r: {**{m: finite_summary(v) for m, v in vals[r].items()},
                "fd": frechet_of_features(c["features"], real)} for r, c in cell.items()}
    boot = fd_bootstrap(real, {r: c["features"] for r, c in cell.items()}, reps) if reps else {}
    orderings = []
    for a, b in ORDERINGS:
        if a not in cell or b not in cell:
            continue
        entry: dict[str, Any] = {"better": a, "worse": b}
        for m, sign in METRICS.items():
            d = paired_difference(vals[a][m], vals[b][m]) if sign > 0 else paired_difference(vals[b][m], vals[a][m])
            entry[m] = {**d, "verdict": verdict(d["mean"], d["se"])}
        fd_mean = rows[b]["fd"] - rows[a]["fd"]  # lower is better
        fd_se = float(np.std(boot[b] - boot[a], ddof=1)) if reps > 1 else float("nan")
        entry["fd"] = {"mean": fd_mean, "se_bootstrap": fd_se, "verdict": verdict(fd_mean, fd_se)}
        orderings.append(entry)
    complete = len(orderings) == len(ORDERINGS)
    holds = complete and all(o[m]["verdict"] == "holds" for o in orderings for m in METRICS)
    return {"rows": rows, "orderings": orderings, "complete": complete, "paper_ordering_holds": holds}


def _fmt(d: dict[str, float], digits: int = 3) -> str:
    return f"{d['mean']:+.{digits}f} ± {d.get('se', d.get('se_bootstrap')):.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    """The tables of :func:`main`'s result, one section per PSNR."""
    lines = []
    for psnr, s in result["psnrs"].items():
        lines += [f"### PSNR {psnr} dB", "", "| row | mIoU ↑ | LPIPS ↓ | FD ↓ |", "|---|---|---|---|"]
        for r, label in ROWS.items():
            if r in s["rows"]:
                x = s["rows"][r]
                lines.append(f"| {label} (`{r}`) | {x['miou']['mean']:.3f} ± {x['miou']['std']:.3f} | "
                             f"{x['lpips']['mean']:.3f} ± {x['lpips']['std']:.3f} | {x['fd']:.2f} |")
            else:
                lines.append(f"| {label} (`{r}`) | not run | not run | not run |")
        lines += ["", "| paper's claim | Δ mIoU ± se | Δ LPIPS ± se | Δ FD ± bootstrap se |", "|---|---|---|---|"]
        for o in s["orderings"]:
            claim = f"{ROWS[o['better']]} > {ROWS[o['worse']]}"
            lines.append(f"| {claim} | {_fmt(o['miou'])} ({o['miou']['verdict']}) | "
                         f"{_fmt(o['lpips'])} ({o['lpips']['verdict']}) | {_fmt(o['fd'], 2)} ({o['fd']['verdict']}) |")
        held = ("yes" if s["paper_ordering_holds"] else "no") if s["complete"] else "not all rows run"
        lines += ["", f"The paper's ordering holds at {psnr} dB on mIoU and LPIPS: **{held}**.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path, help="the gesco evaluate --out folder holding the four rows")
    ap.add_argument("--scenes", type=int, required=True)
    ap.add_argument("--psnr", type=float, nargs="+", default=None,
                    help="PSNRs to report (default: those of the store's last run; slices of one study differ)")
    ap.add_argument("--bootstrap", type=int, default=200, help="resamplings for the FD difference's standard error")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--md", type=Path, default=None)
    args = ap.parse_args(argv)
    plan, real, cells = load_cells(args.folder, args.scenes, args.psnr)
    result = {"folder": str(args.folder), "split": plan.get("split"), "seed": plan.get("seed"), "scenes": args.scenes,
              "verdict_rule": f"holds when the signed paired difference > {VERDICT_SE:g} se, reversed when < -{VERDICT_SE:g} se",
              "psnrs": {f"{p:g}": psnr_summary(c, real, args.bootstrap) for p, c in sorted(cells.items())}}
    text = markdown(result)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
