"""The evaluation report: statistics per row and PSNR, tables (markdown, CSV, JSON), plots, sample grids.

Everything is computed from the results store (:class:`gesco.evaluate.store.ResultStore`)
and the run's plan (its ``"plan"`` meta entry), so ``gesco evaluate --report-only``
rebuilds the report of an interrupted or finished run without sampling anything.

Statistics of a row at one PSNR over its ``n`` scenes:

* mIoU, LPIPS, SSIM and the colour errors (``mean_colour_error``, ``class_colour_error``:
  :mod:`gesco.evaluate.metrics.colour`, generated vs sent image, 0-255 units): mean and
  sample standard deviation (``ddof = 1``) of the per-image values (the paper's "mean +-
  std"); mIoU also pooled over all images (one confusion matrix for the whole set, the
  Cityscapes benchmark's definition) in the CSV / JSON;
* the per-class colour error: for each class, mean and std over the images whose sent
  label map has at least ``MIN_CLASS_PIXELS`` pixels of it (JSON ``class_colour``,
  ``colour_per_class.csv``, the report's per-class tables). Results stored before the
  colour errors existed have none: their cells read "n/a" (a cell averaged over fewer
  images than the row has says ``(n=k)``);
* the Frechet distance between the row's images and the same scenes' real images, one
  number per set (no +-), in the feature space named in the table title: the standard FID
  only with the user's Inception weights, otherwise "FD-AlexNet-relu5 (substitute; not
  FID)". With ``n`` images in ``D`` dimensions the covariances have rank at most
  ``n - 1``; for ``n <= D`` the distance is strongly biased upwards and only comparable
  between rows with the same ``n``;
* bits, channel uses (and per pixel), reference image sizes, the downsampling factor,
  sampling seconds per image: means.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from gesco.evaluate.digital_report import digital_section
from gesco.evaluate.metrics import MIN_CLASS_PIXELS, MeanIoU, frechet_distance
from gesco.evaluate.metrics.frechet import FeatureStatistics
from gesco.evaluate.store import ResultStore
from gesco.semantics.classes import get_class_space

#: the paper's bit comparison (section 4.2, Cityscapes at 256x512)
PAPER_BITS = {"full_image": 1_464_000, "ours": 119_000}
#: per-image numbers averaged into the report (besides mIoU / LPIPS / SSIM)
MEAN_KEYS = ("total_bits", "payload_bits", "header_bits", "channel_uses", "channel_uses_per_pixel", "png_bits",
             "jpeg_bits", "raw_bits", "downsample", "maps", "seconds", "measured_snr_db",
             # digital rows (gesco.evaluate.digital_rows)
             "lost", "quality", "efficiency", "bit_errors", "undetected", "encode_s", "decode_s")
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

#: per-image colour errors (0-255 units, :mod:`gesco.evaluate.metrics.colour`); absent in stores made before them
COLOUR_KEYS = ("mean_colour_error", "class_colour_error")

CSV_FIELDS = ["study", "row", "label", "status", "psnr", "n", "n_planned", "miou_mean", "miou_std", "miou_pooled", "lpips_mean",
              "lpips_std", "ssim_mean", "ssim_std", "mean_colour_error_mean", "mean_colour_error_std",
              "class_colour_error_mean", "class_colour_error_std", "colour_n", "fd", "fd_metric", "total_bits",
              "channel_uses", "channel_uses_per_pixel", "png_bits", "jpeg_bits", "raw_bits", "downsample", "seconds",
              "sampler", "steps", "nfe", "passes", "lost", "quality", "decode_s"]


# --------------------------------------------------------------------------- statistics
def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return None, None
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if len(v) > 1 else None)


def _pooled_miou(metrics: list[dict], space_name: str) -> float | None:
    space = get_class_space(space_name)
    scorer = MeanIoU(space)
    flat = scorer.confusion.reshape(-1)
    for m in metrics:
        for k, v in m.get("confusion", {}).items():
            flat[int(k)] += int(v)
    miou = scorer.compute().miou
    return None if math.isnan(miou) else miou


def _frechet(fake: np.ndarray, real: np.ndarray) -> float | None:
    """Frechet distance of two feature sets ``(n, D)`` (``None`` when either has < 2 rows)."""
    if fake.shape[0] < 2 or real.shape[0] < 2:
        return None
    stats = []
    for f in (real, fake):
        s = FeatureStatistics(f.shape[1])
        s.update(f)
        stats.append(s.mean_cov())
    (mu_r, sig_r), (mu_f, sig_f) = stats
    return frechet_distance(mu_r, sig_r, mu_f, sig_f)


def summarise(store: ResultStore, plan: dict[str, Any]) -> list[dict[str, Any]]:
    """One statistics dict per (row, PSNR) of the plan, missing rows included.

    The real row is PSNR-independent: it gets one entry with ``psnr = None``.
    """
    n_scenes = plan["scenes"]
    space = plan.get("class_space", "cityscapes")
    real_idx, _, real_feats = store.load("real", None, n_scenes)
    real_pos = {s: j for j, s in enumerate(real_idx)}
    out = []
    for row in plan["rows"]:
        m = row["method"]
        psnrs: list[float | None] = [None] if m["kind"] == "real" else list(plan["psnrs"])
        for psnr in psnrs:
            entry: dict[str, Any] = {
                "study": plan["study"], "row": m["key"], "label": m["label"], "kind": m["kind"],
                "status": row["status"], "psnr": psnr, "n": 0, "n_planned": n_scenes, "sampler": row.get("sampler"),
                "steps": row.get("steps"), "nfe": row.get("nfe"), "passes": row.get("passes"),
                "fd_metric": plan["feature_space"]["key"],
            }
            if row["status"] == "ok":
                idx, metrics, feats = store.load(m["key"], psnr, n_scenes)
                entry["n"] = len(idx)
                entry["scenes"] = idx
                entry["miou_mean"], entry["miou_std"] = _mean_std([x.get("miou") for x in metrics])
                entry["miou_pooled"] = _pooled_miou(metrics, space) if metrics else None
                for key in ("lpips", "ssim"):
                    entry[f"{key}_mean"], entry[f"{key}_std"] = _mean_std([x.get(key) for x in metrics])
                for key in COLOUR_KEYS:
                    vals = [x.get(key) for x in metrics]
                    entry[f"{key}_mean"], entry[f"{key}_std"] = _mean_std(vals)
                    entry[f"{key}_n"] = sum(v is not None for v in vals)  # < n: some images have no value
                entry["colour_n"] = entry["mean_colour_error_n"]
                entry["class_colour"] = _per_class_colour(metrics, space)
                paired = [real_pos[s] for s in idx if s in real_pos]
                entry["fd"] = _frechet(feats, real_feats[paired]) if len(paired) == len(idx) and idx else None
                entry["fd_n"] = len(idx)
                for key in MEAN_KEYS:
                    vals = [x[key] for x in metrics if x.get(key) is not None]
                    entry[key] = float(np.mean(vals)) if vals else None
                entry["per_scene"] = {"miou": [x.get("miou") for x in metrics], "lpips": [x.get("lpips") for x in metrics]}
            out.append(entry)
    return out


def _per_class_colour(metrics: list[dict], space_name: str) -> dict[str, dict[str, Any]]:
    """Per class, the colour error over the images that have the class (>= ``MIN_CLASS_PIXELS`` pixels).

    Returns:
        ``{class name: {"id", "mean", "std", "n" (images), "pixels" (mean pixels per such image)}}``
        in label-id order; empty when the results hold no per-class colour errors.
    """
    names = get_class_space(space_name).names
    values: dict[int, list[tuple[float, int]]] = {}
    for m in metrics:
        for c, (err, pixels) in (m.get("class_colour") or {}).items():
            values.setdefault(int(c), []).append((float(err), int(pixels)))
    out = {}
    for c in sorted(values):
        mean, std = _mean_std([e for e, _ in values[c]])
        name = names[c] if 0 <= c < len(names) else str(c)
        out[name] = {"id": c, "mean": mean, "std": std, "n": len(values[c]),
                     "pixels": float(np.mean([p for _, p in values[c]]))}
    return out


# --------------------------------------------------------------------------- formatting
def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 10 ** 5:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def _pm(entry: dict | None, key: str, digits: int = 3) -> str:
    if entry is None:
        return "—"
    if entry["status"] != "ok":
        return "missing"
    if entry["n"] == 0:
        return "not run"
    mean, std = entry.get(f"{key}_mean"), entry.get(f"{key}_std")
    if mean is None:
        return "n/a"
    text = f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f}"
    return text + _partial(entry, key)


def _partial(entry: dict, key: str | None = None) -> str:
    """`` (n=4)`` when a cell averages fewer scenes than planned, else ``""``.

    Fewer scenes: an interrupted run, or (``key`` given) a metric some of the row's stored
    images lack (colour errors of results stored before they existed).
    """
    n = entry["n"]
    k = entry.get(f"{key}_n") if key else None
    if k is not None and k < n:
        n = k
    return f" (n={n})" if n < entry.get("n_planned", entry["n"]) else ""


def _one(entry: dict | None, key: str, digits: int = 3) -> str:
    if entry is None:
        return "—"
    if entry["status"] != "ok":
        return "missing"
    if entry["n"] == 0:
        return "not run"
    return _fmt(entry.get(key), digits) + _partial(entry)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


_EDGES_WORDS = {
    "uploaded": "the scenes' ground-truth instance maps (`--edges uploaded`)",
    "derived": "derived from the label maps by the sender (`--edges derived`: connected components of the thing classes)",
    "none": "none (`--edges none`)",
}


def _psnr_label(p: float) -> str:
    return f"{p:g}"


class _Index:
    """Lookup of summary entries by (row, PSNR); the real row answers for every PSNR."""

    def __init__(self, entries: list[dict]) -> None:
        self.entries = entries
        self._by = {(e["row"], e["psnr"]): e for e in entries}

    def get(self, row: str, psnr: float | None) -> dict | None:
        return self._by.get((row, psnr)) or self._by.get((row, None))

    def rows(self, keys: list[str]) -> list[dict]:
        """First entry of each row, in plan order, restricted to ``keys``."""
        seen, out = set(), []
        for e in self.entries:
            if e["row"] in keys and e["row"] not in seen:
                seen.add(e["row"])
                out.append(e)
        return out


def _metric_table(index: _Index, plan: dict, shown: list[str], key: str, single: bool = False, digits: int = 3) -> str:
    """One metric per row and PSNR, with each row's channel uses per pixel beside its name:
    a comparison with the pixels is only fair when both rows' bandwidth is on the page."""
    psnrs = sorted(plan["psnrs"], reverse=True)  # the paper's column order: 100 ... 1
    rows = []
    for e in index.rows(shown):
        cells = [(_one if single else _pm)(index.get(e["row"], p), key, digits) for p in psnrs]
        rows.append([e["label"], _uses_per_pixel(index, plan, e)] + cells)
    return _table(["Method \\ PSNR (dB)", "channel uses / pixel"] + [_psnr_label(p) for p in psnrs], rows)


def _uses_per_pixel(index: _Index, plan: dict, e: dict) -> str:
    """A row's channel uses per image pixel, mean over its scenes and PSNRs ("0" for the real
    row, which sends nothing; "—" where nothing is stored)."""
    if e["kind"] == "real":
        return "0"
    values = [a["channel_uses_per_pixel"] for a in (index.get(e["row"], p) for p in plan["psnrs"])
              if a and a.get("n") and a.get("channel_uses_per_pixel") is not None]
    return _fmt(float(np.mean(values)), 2) if values else "—"


def _settings_section(plan: dict, commands: list[str]) -> str:
    fs = plan["feature_space"]
    lines = ["## How this report was made", ""]
    lines.append("Command" + ("s (in the order they ran into the same output folder; a resumed or extended "
                              "run, `--no-run` only writes the report)" if len(commands) > 1 else "") + ":")
    lines.append("")
    lines += [f"    {c}" for c in commands]
    lines.append("")
    h, w = plan["resolution"]
    own = [f"`{r['method']['key']}` `{r['sampler']}`, {r['steps']} steps" for r in plan["rows"]
           if r["method"].get("sampler") and r.get("sampler")]
    lines += [
        f"* scenes: {plan['scenes']} scenes of the synthetic `{plan['split']}` split "
        f"(`gesco.data.synthetic`, Cityscapes label ids), {h}x{w} pixels; instance edges sent: "
        + _EDGES_WORDS.get(plan.get("edges", "uploaded"), str(plan.get("edges"))) + ";",
        f"* channel: `{plan['channel']}`, PSNR {', '.join(_psnr_label(p) for p in sorted(plan['psnrs'], reverse=True))} dB;",
        ("* receiver: the sampler of each row (see the tables)" if plan["study"] == "samplers" else
         f"* receiver: sampler `{plan['sampler']}`, {plan['steps']} steps"
         + (f" (rows with their own: {'; '.join(own)})" if own else "")) + f", guidance scale {plan['guidance_scale']:g}; "
        f"codec `{plan['codec']}`; seed {plan['seed']} (scene i uses seed {plan['seed']} * 100000 + i at every PSNR "
        "and in every row);",
        f"* mIoU segmenter: `{plan['segmenter']}`; Frechet feature space: {fs['name']} ({fs['dim']}-d);",
        f"* device: {plan['device']}.",
        "",
    ]
    ckpts = [r for r in plan["rows"] if r.get("checkpoint")]
    if ckpts:
        seen, rows = set(), []
        for r in ckpts:
            if r["checkpoint"] in seen:
                continue
            seen.add(r["checkpoint"])
            steps = (r.get("checkpoint_training") or {}).get("steps")
            rows.append([f"`{r['method']['checkpoint']}`", f"`{r['checkpoint']}`", r["status"],
                         r.get("checkpoint_sha256") or "—", "—" if steps is None else str(steps)])
        lines += [_table(["Role", "Checkpoint", "Status", "SHA-256 (16)", "Training steps"], rows), ""]
    return "\n".join(lines)


def _missing_section(plan: dict) -> str:
    missing = [r for r in plan["rows"] if r["status"] != "ok" and r["method"]["key"] in plan["shown"]]
    if not missing:
        return ""
    rows = [[r["method"]["label"], f"`{r['checkpoint']}`", f"`{r['command']}`"] for r in missing]
    return "\n".join([
        "## Missing rows", "",
        "These rows could not be evaluated because their checkpoint does not exist. They are not "
        "replaced by another model; make the checkpoint and run the same command again (finished rows are "
        "skipped).", "",
        _table(["Row", "Checkpoint", "Command that makes it"], rows), "",
    ])


def _fd_title(plan: dict) -> str:
    fs = plan["feature_space"]
    if fs["key"] == "fid":
        return f"Table 3: FID ({fs['name']}) ↓"
    return f"Table 3: Frechet distance, {fs['name']} ↓ — not FID, not comparable with the paper's values"


def _fd_note(plan: dict) -> str:
    fs, n = plan["feature_space"], plan["scenes"]
    rank = f"rank at most {n - 1} < {fs['dim']} dimensions" if n - 1 < fs["dim"] else f"{n} images in {fs['dim']} dimensions"
    return (f"One distance per set of n = {n} generated vs n = {n} real images (same scenes), so no ±. "
            f"The covariances have {rank}: with so few images the distance is biased upwards and only rows "
            "with the same n can be compared (the paper's FIDs use whole validation sets).")


def _table5(index: _Index, plan: dict) -> str:
    p = float(plan.get("table5_psnr", 10.0))
    if p not in [float(x) for x in plan["psnrs"]]:
        return f"_Table 5 needs PSNR {p:g} dB, which this run did not evaluate._"
    yes = lambda b: "—" if b is None else ("✓" if b else "✗")  # noqa: E731
    rows = []
    for r in plan["rows"]:
        m = r["method"]
        if not (m["table5"] or m["key"] == "fds-inference-only") or m["key"] not in plan["shown"]:
            continue
        e = index.get(m["key"], p)
        rows.append([yes(m["fds"]), yes(m["noisy_training"]), yes(m["fds_training"]), m["label"],
                     _pm(e, "lpips"), _pm(e, "miou"), _one(e, "fd", 2), _pm(e, "mean_colour_error", 2),
                     _pm(e, "class_colour_error", 2)])
    if not rows:
        return "_No ablation rows were evaluated._"
    table = _table(["FDS (inference)", "Noisy training", "FDS in training", "Row", "LPIPS ↓", "mIoU ↑", "FD ↓",
                    "Mean colour error ↓", "Class colour error ↓"], rows)
    return table + _budget_warning(plan)


def _budget_warning(plan: dict) -> str:
    """A loud note when the ablation's checkpoints were trained for different numbers of steps."""
    steps = {}
    for r in plan["rows"]:
        m = r["method"]
        if r.get("status") == "ok" and r.get("checkpoint") and (m["table5"] or m["key"] == "fds-inference-only"):
            steps[m["checkpoint"]] = (r.get("checkpoint_training") or {}).get("steps")
    if len(set(steps.values())) <= 1:
        return ""
    listed = ", ".join(f"`{role}` {n if n is not None else 'unknown'}" for role, n in sorted(steps.items()))
    return ("\n\n**Unequal training budgets** (steps: " + listed + "): the rows differ in training length as well "
            "as in recipe, so this table does not isolate the ablated choice. Map the roles to checkpoints of equal "
            "budget with `--checkpoint ROLE=PATH`.")


def _bits_section(index: _Index, plan: dict) -> str:
    h, w = plan["resolution"]
    rows, mean_bits = [], {}
    for e in index.rows(plan["shown"]):
        if e["kind"] == "real":
            continue
        if e["status"] != "ok" or e["n"] == 0:
            rows.append([e["label"]] + ["missing" if e["status"] != "ok" else "not run"] * 7)
            continue
        # bits and channel uses do not depend on the PSNR (stores made before the fixed-length
        # frame ids of runner.eval_frame_id differ by a few header bits): average over every PSNR
        alls = [index.get(e["row"], p) for p in plan["psnrs"]]
        alls = [a for a in alls if a and a["n"]]
        avg = lambda k: float(np.mean([a[k] for a in alls if a.get(k) is not None])) if any(a.get(k) is not None for a in alls) else None  # noqa: E731
        bits, raw, png, jpeg = avg("total_bits"), avg("raw_bits"), avg("png_bits"), avg("jpeg_bits")
        mean_bits[e["row"]] = {"total_bits": bits, "raw_bits": raw, "png_bits": png, "jpeg_bits": jpeg}
        red = lambda ref: "n/a" if not ref or bits is None else f"{100 * (1 - bits / ref):.1f} %"  # noqa: E731
        if e["kind"] == "full-image":  # its bits ARE the raw image
            red = lambda ref: "—"  # noqa: E731
        rows.append([e["label"], _fmt(bits, 0), _fmt(None if bits is None else bits / (h * w), 4),
                     _fmt(avg("channel_uses"), 0), _fmt(avg("channel_uses_per_pixel"), 3),
                     _fmt(avg("downsample"), 2), red(raw), f"{red(png)} / {red(jpeg)}"])
    table = _table(["Row", "bits / image", "bits / pixel", "channel uses / image", "channel uses / pixel",
                    "map downsampling", "bits vs raw image", "bits vs PNG / JPEG"], rows)
    full, ours = mean_bits.get("full-image"), mean_bits.get("ours")
    lines = [table, ""]
    paper = (f"The paper (Cityscapes, 256x512): the full image needs {PAPER_BITS['full_image']:,} bits, GESCO "
             f"{PAPER_BITS['ours']:,} on average ({100 * (1 - PAPER_BITS['ours'] / PAPER_BITS['full_image']):.0f} % less).")
    if full and ours and full.get("raw_bits") and full.get("png_bits") and ours.get("total_bits"):
        lines.append(paper + f" Here ({h}x{w}): the raw image is {full['raw_bits']:,.0f} bits "
                     f"(PNG {full['png_bits']:,.0f}, JPEG {full['jpeg_bits']:,.0f}), the semantic frame "
                     f"{ours['total_bits']:,.0f} bits ({100 * (1 - ours['total_bits'] / full['raw_bits']):.1f} % less "
                     "than raw).")
    else:
        lines.append(paper)
    lines += ["", "Bits are the frame's payload plus header (`gesco.codecs.frame_bits`); the full image's bits are "
              "its raw 24 bits per pixel (it is sent as analog pixel values, one channel use per colour value). "
              "Channel uses are the real symbols sent: the semantic frame sends every coded map at full (or "
              "downsampled) resolution, so it needs FEWER BITS but MORE CHANNEL USES than the image unless the "
              "maps are downsampled (see the next table)."]
    return "\n".join(lines)


def _equal_uses_section(index: _Index, plan: dict) -> str:
    keys = [k for k in ("full-image", "ours", "equal-uses") if k in plan["shown"]]
    if "equal-uses" not in keys:
        return "_The equal-channel-uses row was not part of this run._"
    psnrs = sorted(plan["psnrs"], reverse=True)
    rows = []
    for e in index.rows(keys):
        cu = _one(index.get(e["row"], psnrs[0]), "channel_uses_per_pixel", 3)
        rows.append([e["label"], cu] + [_pm(index.get(e["row"], p), "miou") for p in psnrs])
        rows.append([e["label"] + " (LPIPS)", cu] + [_pm(index.get(e["row"], p), "lpips") for p in psnrs])
    return "\n".join([
        "Each scene's maps are block-downsampled by the smallest factor k with "
        "maps x ceil(H/k) x ceil(W/k) <= 3 H W (the full image's channel uses); the receiver upsamples them "
        "(nearest) before FDS.", "",
        _table(["Row", "channel uses / pixel"] + [f"{_psnr_label(p)} dB" for p in psnrs], rows),
    ])


def _colour_note(index: _Index, plan: dict) -> str:
    """What the two colour figures say, and which rows lack them (results stored before they existed)."""
    lines = ["Both colour errors compare each generated image with the sent image (the real scene), in 0-255 RGB "
             "units: the whole-image one shows a colour cast over the image, the per-class one a wrong colour "
             "region by region (it is at least the whole-image one when every pixel is in a scored class). A "
             "constant offset of (10, 0, 0) gives 10 for both. The real row is the sent image: 0."]
    lacking = sorted({e["label"] for e in index.entries if e["row"] in plan["shown"] and e["status"] == "ok"
                      and e["n"] and (e.get("colour_n") or 0) < e["n"]})
    if lacking:
        lines.append("")
        lines.append("**Colour errors missing** for some stored images of: " + "; ".join(lacking) + ". They were "
                     "stored before the colour errors existed (n/a, or `(n=k)` over the images that have them); the "
                     "images themselves are not stored, so evaluate into a new `--out` folder to get them.")
    return "\n".join(lines)


def _class_order(entries: list[dict]) -> list[str]:
    """Classes with a per-class colour error in any entry, largest (pixels over the scenes) first."""
    size: dict[str, tuple[float, int]] = {}
    for e in entries:
        for name, c in (e.get("class_colour") or {}).items():
            total = c["n"] * c["pixels"]
            if total > size.get(name, (-1.0, 0))[0]:
                size[name] = (total, c["id"])
    return sorted(size, key=lambda k: (-size[k][0], size[k][1]))


def _per_class_colour_section(index: _Index, plan: dict) -> str:
    """Rows: classes; columns: the shown rows; one table per PSNR (mean over the scenes that have the class)."""
    entries = [e for e in index.entries if e["row"] in plan["shown"]]
    classes = _class_order(entries)
    if not classes:
        return "_No per-class colour errors in the stored results (stored before they existed, or not run)._"
    heads = index.rows(plan["shown"])
    real = index.get("real", None)
    lines = [f"Per class of the sent label maps (classes with >= {MIN_CLASS_PIXELS} pixels in a scene), the distance "
             "between the mean RGB of the generated and of the sent image over that class's pixels (0-255), "
             "averaged over the scenes that have the class (std in `results.json` and `colour_per_class.csv`). "
             "`scenes` and `pixels / scene` are those of the real images.", ""]

    def cell(e: dict | None, name: str, rc: dict | None) -> str:
        if e is None:
            return "—"
        if e["status"] != "ok":
            return "missing"
        if e["n"] == 0:
            return "not run"
        c = (e.get("class_colour") or {}).get(name)
        if c is None or c["mean"] is None:
            return "n/a"
        fewer = f" (n={c['n']})" if rc and c["n"] < rc["n"] else ""  # fewer scenes than the real row's
        return f"{c['mean']:.1f}{fewer}"

    for p in sorted(plan["psnrs"], reverse=True):
        rows = []
        for name in classes:
            rc = ((real or {}).get("class_colour") or {}).get(name)
            rows.append([name, str(rc["n"]) if rc else "n/a", f"{rc['pixels']:.0f}" if rc else "n/a"]
                        + [cell(index.get(h["row"], p), name, rc) for h in heads])
        lines += [f"### PSNR {_psnr_label(p)} dB", "",
                  _table(["Class", "scenes", "pixels / scene"] + [h["label"] for h in heads], rows), ""]
    return "\n".join(lines).rstrip()


COLOUR_CSV_FIELDS = ["study", "row", "label", "psnr", "class_id", "class", "n", "pixels", "error_mean", "error_std"]


def _colour_csv_rows(entries: list[dict]) -> list[dict[str, Any]]:
    rows = []
    for e in entries:
        for name, c in (e.get("class_colour") or {}).items():
            rows.append({"study": e["study"], "row": e["row"], "label": e["label"], "psnr": e["psnr"],
                         "class_id": c["id"], "class": name, "n": c["n"], "pixels": c["pixels"],
                         "error_mean": c["mean"], "error_std": c["std"]})
    return rows


# --------------------------------------------------------------------------- plots and grids
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(index: _Index, plan: dict, folder: Path) -> list[Path]:
    """One PNG per metric: the metric against PSNR, one line per row (error bars: std over scenes)."""
    plt = _plt()
    folder.mkdir(parents=True, exist_ok=True)
    psnrs = sorted(plan["psnrs"])
    xs = np.arange(len(psnrs))
    fs = plan["feature_space"]
    metrics = [("miou", "mIoU ↑"), ("lpips", "LPIPS ↓"), ("ssim", "SSIM ↑"),
               ("fd", ("FID" if fs["key"] == "fid" else "FD-AlexNet (substitute; not FID)") + " ↓"),
               ("mean_colour_error", "mean colour error (0-255) ↓"),
               ("class_colour_error", "class colour error (0-255) ↓")]
    paths = []
    missing = [e["label"] for e in index.rows(plan["shown"]) if e["status"] != "ok"]
    for key, title in metrics:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for e in index.rows(plan["shown"]):
            if e["status"] != "ok":
                continue
            if e["kind"] == "real":
                v = e.get(f"{key}_mean") if key != "fd" else None
                if v is not None:
                    ax.axhline(v, color="k", ls="--", lw=1, label=e["label"])
                continue
            ys, err = [], []
            for p in psnrs:
                s = index.get(e["row"], p)
                ys.append(np.nan if not s or s.get(key if key == "fd" else f"{key}_mean") is None
                          else s[key if key == "fd" else f"{key}_mean"])
                err.append(0.0 if key == "fd" or not s or s.get(f"{key}_std") is None else s[f"{key}_std"])
            counts = sorted({s["n"] for s in (index.get(e["row"], p) for p in psnrs) if s and s["n"]})
            partial = counts and counts[0] < plan["scenes"]
            label = e["label"] + (f" (n={'/'.join(map(str, counts))})" if partial else "")
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, lw=1.5, label=label)
        ax.set_xticks(xs, [_psnr_label(p) for p in psnrs])
        ax.set_xlabel("channel PSNR (dB)")
        ax.set_ylabel(title)
        ax.set_title(f"{title} against PSNR ({plan['scenes']} scenes)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        if missing:
            fig.text(0.01, 0.01, "missing (no checkpoint): " + "; ".join(missing), fontsize=6)
        fig.tight_layout()
        path = folder / f"{key}_vs_psnr.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _read_png(path: Path) -> np.ndarray | None:
    import cv2

    if not path.is_file():
        return None
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else bgr[:, :, ::-1]


def sample_grids(out: Path, plan: dict) -> list[Path]:
    """Fig. 9-like grids, one PNG per saved scene: rows PSNR (100 at the top), columns methods."""
    plt = _plt()
    samples = out / "samples"
    psnrs = sorted(plan["psnrs"], reverse=True)
    cols = [("real", "Real image"), ("label", "Label map")]
    cols += [(r["method"]["key"], r["method"]["label"]) for r in plan["rows"]
             if r["method"]["kind"] != "real" and r["method"]["key"] in plan["shown"]]
    status = {r["method"]["key"]: r["status"] for r in plan["rows"]}
    h, w = plan["resolution"]
    paths = []
    for s in range(plan.get("grid_scenes", 0)):
        cell_h = 1.1  # inches per image row; columns keep the image's aspect ratio
        cell_w = cell_h * w / h
        fig, axes = plt.subplots(len(psnrs), len(cols), figsize=(cell_w * len(cols) + 0.4, cell_h * len(psnrs) + 0.7),
                                 squeeze=False, gridspec_kw={"wspace": 0.04, "hspace": 0.06})
        for r, p in enumerate(psnrs):
            for c, (key, label) in enumerate(cols):
                ax = axes[r][c]
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title("\n".join(_wrap(label, 22)), fontsize=6)
                if c == 0:
                    ax.set_ylabel(f"{_psnr_label(p)} dB", fontsize=7)
                if key in ("real", "label"):
                    img = _read_png(samples / key / f"scene{s:03d}.png") if key == "label" else \
                        _read_png(samples / "real" / "real" / f"scene{s:03d}.png")
                else:
                    img = _read_png(samples / key / f"psnr{_psnr_label(p)}" / f"scene{s:03d}.png")
                if img is not None:
                    ax.imshow(img)
                else:
                    ax.text(0.5, 0.5, "missing" if status.get(key, "ok") != "ok" else "", ha="center", va="center",
                            fontsize=7, transform=ax.transAxes)
                    for spine in ax.spines.values():
                        spine.set_visible(status.get(key, "ok") != "ok")
        fig.suptitle(f"Scene {s} of the {plan['split']} split: generated images per PSNR (rows) and method (columns)",
                     fontsize=8)
        fig.subplots_adjust(left=0.03, right=0.995, bottom=0.01, top=1.0 - 0.6 / (cell_h * len(psnrs) + 0.7))
        path = out / f"sample_grid_scene{s:03d}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


# --------------------------------------------------------------------------- the sampler study
def sampler_choice(index: _Index, plan: dict) -> dict[str, Any]:
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
            details[_psnr_label(p)] = checks
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


def plot_samplers(index: _Index, plan: dict, folder: Path) -> list[Path]:
    """mIoU and LPIPS against network forwards per image (log axis), one line per sampler, per PSNR."""
    plt = _plt()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, title in (("miou", "mIoU ↑"), ("lpips", "LPIPS ↓")):
        fig, axes = plt.subplots(1, len(plan["psnrs"]), figsize=(5 * len(plan["psnrs"]), 3.8), squeeze=False)
        for ax, p in zip(axes[0], sorted(plan["psnrs"], reverse=True)):
            families: dict[str, list[tuple[int, float, float]]] = {}
            for r in plan["rows"]:
                e = index.get(r["method"]["key"], p)
                if r["status"] != "ok" or not e or not e["n"] or e.get(f"{key}_mean") is None:
                    continue
                if r["sampler"] == "ancestral":
                    ax.axhline(e[f"{key}_mean"], color="k", ls="--", lw=1, label=f"ancestral, {r['nfe']} steps")
                    continue
                families.setdefault(r["sampler"], []).append((r["nfe"], e[f"{key}_mean"], e.get(f"{key}_std") or 0.0))
            for name, pts in families.items():
                pts.sort()
                ax.errorbar([a for a, _, _ in pts], [b for _, b, _ in pts], yerr=[c for _, _, c in pts], marker="o",
                            capsize=3, label=name)
            ax.set_xscale("log")
            ax.set_xlabel("network forwards per image (x2 images per forward with guidance)")
            ax.set_ylabel(title)
            ax.set_title(f"PSNR {_psnr_label(p)} dB ({plan['scenes']} scenes)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"samplers_{key}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


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
    return _table(["Row", "Passes / image", "PSNR (dB)", f"Δ mIoU vs reference (≥ -{FEW_STEP_MIOU_TOLERANCE:g})",
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
    return _table(["Sampler, steps", "PSNR (dB)", "Δ mIoU vs reference (tol)", "Δ LPIPS vs reference (tol)",
                   "FD / reference FD", "matches"], rows)


def _samplers_markdown(index: _Index, plan: dict, commands: list[str], choice: dict, plots: list[Path], out: Path) -> str:
    lines = ["# gesco sampler study", "",
             "mIoU and LPIPS of the method's images (noisy training + FDS) against the number of network "
             "evaluations, for the paper's ancestral sampler over the whole chain (1000 steps) and the few-step samplers.", "",
             _settings_section(plan, commands)]
    for p in sorted(plan["psnrs"], reverse=True):
        rows = []
        for r in plan["rows"]:
            if r["method"]["kind"] != "semantic":
                continue
            e = index.get(r["method"]["key"], p)
            name = r["sampler"] + (" (distilled student)" if r["method"].get("checkpoint") == "student" else
                                   " (no guidance)" if r["method"].get("guidance_scale") == 1.0 else "")
            rows.append([name, str(r["steps"]), str(r["nfe"]), str(r["passes"]), _pm(e, "miou"),
                         _pm(e, "lpips"), _one(e, "fd", 2), _pm(e, "mean_colour_error", 2),
                         _pm(e, "class_colour_error", 2), _one(e, "seconds", 3)])
        lines += [f"## PSNR {_psnr_label(p)} dB", "",
                  _table(["Sampler", "Steps", "Network forwards", "Image passes", "mIoU ↑", "LPIPS ↓",
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
    lines += ["FD: " + _fd_note(plan), "", "## Plots", ""]
    lines += [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in plots]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the channel report
def _channel_markdown(index: _Index, plan: dict, commands: list[str], plots: list[Path], grids: list[Path],
                      out: Path) -> str:
    shown = plan["shown"]
    n = plan["scenes"]
    lines = ["# gesco evaluation report", "",
             f"Generated images of every row over {n} synthetic {plan['split']} scenes at each channel PSNR, scored against "
             "the real scene: the paper's Tables 1-3 and 5 and its bit comparison, plus SSIM and channel uses.", "",
             _settings_section(plan, commands), _missing_section(plan),
             f"## Table 1: mIoU ↑ (segmenter on the generated image vs the transmitted label map; mean ± std over {n} scenes)",
             "", _metric_table(index, plan, shown, "miou"), "",
             f"## Table 2: LPIPS ↓ (AlexNet, v0.1; generated vs real image; mean ± std over {n} scenes)", "",
             _metric_table(index, plan, shown, "lpips"), "",
             f"## {_fd_title(plan)}", "", _metric_table(index, plan, shown, "fd", single=True, digits=2), "",
             _fd_note(plan), "",
             f"## SSIM ↑ (generated vs real image; mean ± std over {n} scenes)", "",
             _metric_table(index, plan, shown, "ssim"), "",
             f"## Mean colour error ↓ (distance of the whole-image mean RGB, generated vs sent image, 0-255; "
             f"mean ± std over {n} scenes)", "",
             _metric_table(index, plan, shown, "mean_colour_error", digits=2), "",
             f"## Class colour error ↓ (per class of the sent label map with >= {MIN_CLASS_PIXELS} pixels, distance "
             f"of the class's mean RGB, generated vs sent image, pixel-weighted over the classes, 0-255; mean ± std "
             f"over {n} scenes)", "",
             _metric_table(index, plan, shown, "class_colour_error", digits=2), "",
             _colour_note(index, plan), "",
             f"## Table 5: ablation at PSNR {float(plan.get('table5_psnr', 10.0)):g} dB", "", _table5(index, plan), "",
             "## Bits and channel uses", "", _bits_section(index, plan), "",
             "## Equal channel uses", "", _equal_uses_section(index, plan), "",
             *(["## Digital link", "", digital_section(index, plan), ""]
               if any(r["method"]["kind"].startswith("digital") for r in plan["rows"]) else []),
             "## Per-class colour error", "", _per_class_colour_section(index, plan), "",
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


# --------------------------------------------------------------------------- files
def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def write_report(out: str | Path, store: ResultStore, plan: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``results.csv``, ``results.json``, ``colour_per_class.csv``, ``plots/*.png`` and the sample grids.

    Args:
        out: the output folder.
        store: the results.
        plan: the plan to report (default: the last plan recorded in the store; a run
            passes its own, since another process may have recorded a newer one meanwhile).
    Returns:
        ``{"markdown", "csv", "json", "colour_csv", "plots": [...], "grids": [...]}`` paths (the lists as lists).
    """
    out = Path(out)
    plan = plan if plan is not None else store.get_meta("plan")
    commands = store.get_meta("commands") or []
    entries = summarise(store, plan)
    index = _Index(entries)
    if plan["study"] == "samplers":
        plots = plot_samplers(index, plan, out / "plots")
        grids: list[Path] = []
        extra = {"choice": sampler_choice(index, plan)}
        markdown = _samplers_markdown(index, plan, commands, extra["choice"], plots, out)
    else:
        plots = plot_metrics(index, plan, out / "plots")
        grids = sample_grids(out, plan)
        extra = {}
        markdown = _channel_markdown(index, plan, commands, plots, grids, out)
    paths: dict[str, Any] = {"markdown": out / "report.md", "csv": out / "results.csv", "json": out / "results.json",
                             "colour_csv": out / "colour_per_class.csv", "plots": plots, "grids": grids}
    paths["markdown"].write_text(markdown)
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for e in entries:
            writer.writerow({k: ("" if e.get(k) is None else e.get(k)) for k in CSV_FIELDS})
    with open(paths["colour_csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLOUR_CSV_FIELDS)
        writer.writeheader()
        for r in _colour_csv_rows(entries):
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLOUR_CSV_FIELDS})
    slim = [{k: v for k, v in e.items() if k not in ("per_scene", "scenes")} for e in entries]
    paths["json"].write_text(json.dumps(_jsonable({"plan": plan, "commands": commands, "results": slim,
                                                   "notes": {"fd": _fd_note(plan)}, **extra}), indent=2) + "\n")
    return paths
