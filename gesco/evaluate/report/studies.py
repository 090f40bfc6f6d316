"""The two studies' reports: the sampler study (the automatic choice of the default sampler,
the few-step verdicts, its markdown) and the channel study's markdown (the paper's tables)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from gesco.evaluate.metrics import MIN_CLASS_PIXELS
from gesco.evaluate.report.digital import digital_section
from gesco.evaluate.report.format import fmt_one, fmt_pm, md_table, psnr_label
from gesco.evaluate.report.statistics import ResultIndex
from gesco.evaluate.report.tables import (
    bits_section,
    colour_note,
    equal_uses_section,
    fd_note,
    fd_title,
    metric_table,
    missing_section,
    per_class_colour_section,
    settings_section,
    table5,
)

#: sampler-study tolerance floor: a sampler "matches" the reference within this mIoU / LPIPS
MATCH_TOLERANCE = 0.01
#: sampler-study Frechet criterion: a sampler's distance may exceed the reference's by this fraction.
#: The distance has no per-scene values (no standard error), so the tolerance is relative; it
#: catches what per-image mIoU / LPIPS miss, e.g. residual high-frequency noise in every image
#: (added after the 6-scene study of the 2,400-step checkpoint, docs/evaluation/samplers/).
FD_REL_TOLERANCE = 0.25
#: The few-step target (issue 15): at most this many network passes per image ...
FEW_STEP_PASSES = 8
#: ... with a mean mIoU at most this much below the reference's
FEW_STEP_MIOU_TOLERANCE = 0.02


# --------------------------------------------------------------------------- the sampler study
def sampler_choice(index: ResultIndex, plan: dict) -> dict[str, Any]:
    """Pick the default sampler: the fewest network forwards that match the 1000-step reference.

    A configuration matches at a PSNR when its mean mIoU is at least the reference's minus
    ``tol`` and its mean LPIPS at most the reference's plus ``tol``, where
    ``tol = max(0.01, 2 standard errors of the paired per-scene difference)``, and its
    Frechet distance (over the same number of scenes) is at most ``1 + FD_REL_TOLERANCE``
    times the reference's; it must match at every PSNR of the study. Ties: higher mean mIoU.
    """
    ref_row = next((r for r in plan["rows"] if r.get("sampler") == "ancestral" and r["status"] == "ok"), None)
    if ref_row is None:
        return {"choice": None, "reason": "the full-chain ancestral reference was not evaluated"}
    ref_key = ref_row["method"]["key"]
    verdicts = []
    for r in plan["rows"]:
        key = r["method"]["key"]
        if key == ref_key or r["status"] != "ok" or r["method"]["kind"] != "semantic":
            continue
        ok_all, details = True, {}
        for p in plan["psnrs"]:
            e, ref = index.get(key, p), index.get(ref_key, p)
            if not e or not ref or not e["n"] or not ref["n"]:
                ok_all = False
                continue
            checks = {}
            for metric, sign in (("miou", 1.0), ("lpips", -1.0)):
                a = dict(zip(e["scenes"], e["per_scene"][metric]))
                b = dict(zip(ref["scenes"], ref["per_scene"][metric]))
                diffs = [a[s] - b[s] for s in a if s in b and a[s] is not None and b[s] is not None]
                if not diffs:
                    checks[metric] = None
                    ok_all = False
                    continue
                se = float(np.std(diffs, ddof=1) / math.sqrt(len(diffs))) if len(diffs) > 1 else 0.0
                tol = max(MATCH_TOLERANCE, 2.0 * se)
                delta = float(np.mean(diffs))
                good = sign * delta >= -tol
                checks[metric] = {"delta": delta, "tol": tol, "match": bool(good)}
                ok_all = ok_all and bool(good)
            if e.get("fd") is None or ref.get("fd") is None or e.get("fd_n") != ref.get("fd_n"):
                checks["fd"] = None  # not comparable (missing, or over different numbers of scenes)
                ok_all = False
            else:
                limit = (1.0 + FD_REL_TOLERANCE) * ref["fd"]
                good = e["fd"] <= limit
                checks["fd"] = {"value": e["fd"], "reference": ref["fd"], "limit": limit, "match": bool(good)}
                ok_all = ok_all and bool(good)
            details[psnr_label(p)] = checks
        verdicts.append({"row": key, "label": r["method"].get("label", key), "sampler": r["sampler"], "steps": r["steps"],
                         "nfe": r["nfe"], "passes": r.get("passes") or r["nfe"], "match": ok_all, "details": details,
                         "miou": float(np.mean([index.get(key, p).get("miou_mean") or 0.0 for p in plan["psnrs"]]))})
    # cheapest first: network passes per image (a guided step costs two; a distilled student's one)
    matches = sorted((v for v in verdicts if v["match"]), key=lambda v: (v["passes"], -v["miou"]))
    if not matches:
        return {"choice": None, "reference": ref_key, "verdicts": verdicts,
                "reason": "no few-step configuration matches the reference within the tolerance"}
    best = matches[0]
    return {"choice": best["row"], "label": best["label"], "sampler": best["sampler"], "steps": best["steps"],
            "nfe": best["nfe"], "passes": best["passes"],
            "reference": ref_key, "verdicts": verdicts,
            "reason": (f"{best['label']} is the cheapest configuration "
                       f"({best['passes']} network passes per image vs {ref_row.get('passes') or ref_row['nfe']}) "
                       "whose mIoU and LPIPS match the "
                       f"{ref_row['nfe']}-step ancestral reference at every PSNR of the study "
                       "(within max(0.01, 2 paired standard errors)) with a Frechet distance at most "
                       f"{1 + FD_REL_TOLERANCE:g}x the reference's")}


def few_step_verdicts(choice: dict) -> list[dict]:
    """The few-step target (issue 15) for every candidate with at most :data:`FEW_STEP_PASSES` passes.

    A candidate meets it at every PSNR of the study when its mean mIoU is at least the
    reference's minus :data:`FEW_STEP_MIOU_TOLERANCE` (an absolute bound on a loss, no
    standard-error widening) and its Frechet distance at most ``1 + FD_REL_TOLERANCE`` times
    the reference's.
    """
    out = []
    for v in choice.get("verdicts") or []:
        if v["passes"] > FEW_STEP_PASSES:
            continue
        per, ok = {}, bool(v["details"])
        for psnr, checks in v["details"].items():
            m, fd = checks.get("miou"), checks.get("fd")
            miou_ok = m is not None and m["delta"] >= -FEW_STEP_MIOU_TOLERANCE
            fd_ok = fd is not None and fd["match"]
            per[psnr] = {"miou_delta": None if m is None else m["delta"], "miou_ok": miou_ok,
                         "fd_ratio": None if not fd or not fd["reference"] else fd["value"] / fd["reference"], "fd_ok": fd_ok}
            ok = ok and miou_ok and fd_ok
        out.append({"row": v["row"], "label": v.get("label", v["row"]), "passes": v["passes"], "meets": ok, "details": per})
    return out


def _few_step_table(verdicts: list[dict]) -> str:
    rows = []
    for v in verdicts:
        for psnr, c in v["details"].items():
            d = "n/a" if c["miou_delta"] is None else f"{c['miou_delta']:+.3f} {'✓' if c['miou_ok'] else '✗'}"
            f = "n/a" if c["fd_ratio"] is None else f"{c['fd_ratio']:.2f}x {'✓' if c['fd_ok'] else '✗'}"
            rows.append([v["label"], str(v["passes"]), psnr, d, f, "**yes**" if v["meets"] else "no"])
    return md_table(["Row", "Passes / image", "PSNR (dB)", f"Δ mIoU vs reference (≥ -{FEW_STEP_MIOU_TOLERANCE:g})",
                   f"FD / reference FD (≤ {1 + FD_REL_TOLERANCE:g}x)", "meets"], rows)


def _verdict_table(verdicts: list[dict]) -> str:
    """Each candidate against the reference: paired mIoU / LPIPS differences with their tolerance, FD ratio."""
    def paired(c: dict | None) -> str:
        return "n/a" if not c else f"{c['delta']:+.3f} (±{c['tol']:.3f}) {'✓' if c['match'] else '✗'}"

    def fd(c: dict | None) -> str:
        return "not comparable" if not c else (f"{c['value']:.2f} / {c['reference']:.2f} = "
                                                f"{c['value'] / c['reference']:.2f}x {'✓' if c['match'] else '✗'}"
                                                if c["reference"] else "n/a")
    rows = []
    for v in verdicts:
        for psnr, checks in v["details"].items():
            rows.append([v.get("label", f"{v['sampler']}, {v['steps']}"), psnr, paired(checks.get("miou")), paired(checks.get("lpips")),
                         fd(checks.get("fd")), "**yes**" if v["match"] else "no"])
    return md_table(["Sampler, steps", "PSNR (dB)", "Δ mIoU vs reference (tol)", "Δ LPIPS vs reference (tol)",
                   "FD / reference FD", "matches"], rows)


def samplers_markdown(index: ResultIndex, plan: dict, commands: list[str], choice: dict, plots: list[Path], out: Path) -> str:
    lines = ["# gesco sampler study", "",
             "mIoU and LPIPS of the method's images (noisy training + FDS) against the number of network "
             "evaluations, for the paper's ancestral sampler over the whole chain (1000 steps) and the few-step samplers.", "",
             settings_section(plan, commands)]
    for p in sorted(plan["psnrs"], reverse=True):
        rows = []
        for r in plan["rows"]:
            if r["method"]["kind"] != "semantic":
                continue
            e = index.get(r["method"]["key"], p)
            name = r["sampler"] + (" (distilled student)" if r["method"].get("checkpoint") == "student" else
                                   " (no guidance)" if r["method"].get("guidance_scale") == 1.0 else "")
            rows.append([name, str(r["steps"]), str(r["nfe"]), str(r["passes"]), fmt_pm(e, "miou"),
                         fmt_pm(e, "lpips"), fmt_one(e, "fd", 2), fmt_pm(e, "mean_colour_error", 2),
                         fmt_pm(e, "class_colour_error", 2), fmt_one(e, "seconds", 3)])
        lines += [f"## PSNR {psnr_label(p)} dB", "",
                  md_table(["Sampler", "Steps", "Network forwards", "Image passes", "mIoU ↑", "LPIPS ↓",
                          "FD ↓", "Mean colour error ↓", "Class colour error ↓", "s / image"], rows), ""]
    lines += ["## Choice", "",
              (f"**{choice['sampler']}, {choice['steps']} steps.** " if choice.get("choice") else "**No choice.** ")
              + choice["reason"] + ".", ""]
    if choice.get("verdicts"):
        lines += [_verdict_table(choice["verdicts"]), ""]
    few = few_step_verdicts(choice)
    if few:
        lines += [f"### Few-step target: at most {FEW_STEP_PASSES} network passes per image", "",
                  f"mIoU at most {FEW_STEP_MIOU_TOLERANCE:g} below the reference's (absolute) and Frechet distance at most "
                  f"{1 + FD_REL_TOLERANCE:g}x the reference's, at every PSNR of the study.", "",
                  _few_step_table(few), ""]
    lines += ["FD: " + fd_note(plan), "", "## Plots", ""]
    lines += [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in plots]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the channel report
def channel_markdown(index: ResultIndex, plan: dict, commands: list[str], plots: list[Path], grids: list[Path],
                      out: Path) -> str:
    shown = plan["shown"]
    n = plan["scenes"]
    lines = ["# gesco evaluation report", "",
             f"Generated images of every row over {n} synthetic {plan['split']} scenes at each channel PSNR, scored against "
             "the real scene: the paper's Tables 1-3 and 5 and its bit comparison, plus SSIM and channel uses.", "",
             settings_section(plan, commands), missing_section(plan),
             f"## Table 1: mIoU ↑ (segmenter on the generated image vs the transmitted label map; mean ± std over {n} scenes)",
             "", metric_table(index, plan, shown, "miou"), "",
             f"## Table 2: LPIPS ↓ (AlexNet, v0.1; generated vs real image; mean ± std over {n} scenes)", "",
             metric_table(index, plan, shown, "lpips"), "",
             f"## {fd_title(plan)}", "", metric_table(index, plan, shown, "fd", single=True, digits=2), "",
             fd_note(plan), "",
             f"## SSIM ↑ (generated vs real image; mean ± std over {n} scenes)", "",
             metric_table(index, plan, shown, "ssim"), "",
             f"## Mean colour error ↓ (distance of the whole-image mean RGB, generated vs sent image, 0-255; "
             f"mean ± std over {n} scenes)", "",
             metric_table(index, plan, shown, "mean_colour_error", digits=2), "",
             f"## Class colour error ↓ (per class of the sent label map with >= {MIN_CLASS_PIXELS} pixels, distance "
             f"of the class's mean RGB, generated vs sent image, pixel-weighted over the classes, 0-255; mean ± std "
             f"over {n} scenes)", "",
             metric_table(index, plan, shown, "class_colour_error", digits=2), "",
             colour_note(index, plan), "",
             f"## Table 5: ablation at PSNR {float(plan.get('table5_psnr', 10.0)):g} dB", "", table5(index, plan), "",
             "## Bits and channel uses", "", bits_section(index, plan), "",
             "## Equal channel uses", "", equal_uses_section(index, plan), "",
             *(["## Digital link", "", digital_section(index, plan), ""]
               if any(r["method"]["kind"].startswith("digital") for r in plan["rows"]) else []),
             "## Per-class colour error", "", per_class_colour_section(index, plan), "",
             "## Notes", "",
             "* mean ± std: sample standard deviation over the scenes of the per-image values (mIoU per image: "
             "mean IoU over the classes present in that image's label map or prediction). The CSV / JSON also give "
             "the mIoU pooled over all images (one confusion matrix, the Cityscapes benchmark's definition).",
             "* The real-images row does not depend on the channel: the same value stands in every column. Its "
             "mIoU is the segmenter's own accuracy, the ceiling of every row; its colour errors are computed like "
             "every row's and are 0 (it is the sent image).",
             "* Every row at a given scene uses the same seed (channel noise and sampling noise): differences between "
             "rows are not differences of random draws.",
             "* Sampling seconds per image (CSV `seconds`) are wall-clock on the device above, batch time / batch size.",
             "", "## Plots and samples", ""]
    lines += [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in plots]
    lines += [""] + [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in grids]
    return "\n".join(lines) + "\n"
