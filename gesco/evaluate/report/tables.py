"""The tables and sections of the channel report's markdown (Tables 1-3 and 5, bits, equal
channel uses, colour per class, settings, missing rows) and the per-class colour CSV rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from gesco.evaluate.metrics import MIN_CLASS_PIXELS
from gesco.evaluate.report.format import EDGES_WORDS, fmt, fmt_one, fmt_pm, md_table, no_value, psnr_label
from gesco.evaluate.report.statistics import ResultIndex

#: the paper's bit comparison (section 4.2, Cityscapes at 256x512)
PAPER_BITS = {"full_image": 1_464_000, "ours": 119_000}


def metric_table(index: ResultIndex, plan: dict, shown: list[str], key: str, single: bool = False, digits: int = 3) -> str:
    """One metric per row and PSNR, with each row's channel uses per pixel beside its name:
    a comparison with the pixels is only fair when both rows' bandwidth is on the page."""
    psnrs = sorted(plan["psnrs"], reverse=True)  # the paper's column order: 100 ... 1
    rows = []
    for e in index.rows(shown):
        cells = [(fmt_one if single else fmt_pm)(index.get(e["row"], p), key, digits) for p in psnrs]
        rows.append([e["label"], _uses_per_pixel(index, plan, e)] + cells)
    return md_table(["Method \\ PSNR (dB)", "channel uses / pixel"] + [psnr_label(p) for p in psnrs], rows)


def _uses_per_pixel(index: ResultIndex, plan: dict, e: dict) -> str:
    """A row's channel uses per image pixel, mean over its scenes and PSNRs ("0" for the real
    row, which sends nothing; "—" where nothing is stored)."""
    if e["kind"] == "real":
        return "0"
    values = [a["channel_uses_per_pixel"] for a in (index.get(e["row"], p) for p in plan["psnrs"])
              if a and a.get("n") and a.get("channel_uses_per_pixel") is not None]
    return fmt(float(np.mean(values)), 2) if values else "—"


def settings_section(plan: dict, commands: list[str]) -> str:
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
    cooled = [f"`{r['method']['key']}` {r['mean_temperature']:g}" for r in plan["rows"]
              if r.get("mean_temperature") not in (None, 1.0)]
    lines += [
        f"* scenes: {plan['scenes']} scenes of the synthetic `{plan['split']}` split "
        f"(`gesco.data.synthetic`, Cityscapes label ids), {h}x{w} pixels; instance edges sent: "
        + EDGES_WORDS.get(plan.get("edges", "uploaded"), str(plan.get("edges"))) + ";",
        f"* channel: `{plan['channel']}`, PSNR {', '.join(psnr_label(p) for p in sorted(plan['psnrs'], reverse=True))} dB;",
        ("* receiver: the sampler of each row (see the tables)" if plan["study"] == "samplers" else
         f"* receiver: sampler `{plan['sampler']}`, {plan['steps']} steps"
         + (f" (rows with their own: {'; '.join(own)})" if own else "")) + f", guidance scale {plan['guidance_scale']:g}; "
        + (f"mean temperature of the starting noise (`gesco.diffusion.samplers.scale_start_mean`; 1 elsewhere): "
           f"{'; '.join(cooled)}; " if cooled else "")
        + f"codec `{plan['codec']}`; seed {plan['seed']} (scene i uses seed {plan['seed']} * 100000 + i at every PSNR "
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
        lines += [md_table(["Role", "Checkpoint", "Status", "SHA-256 (16)", "Training steps"], rows), ""]
    return "\n".join(lines)


def missing_section(plan: dict) -> str:
    missing = [r for r in plan["rows"] if r["status"] != "ok" and r["method"]["key"] in plan["shown"]]
    if not missing:
        return ""
    rows = [[r["method"]["label"], f"`{r['checkpoint']}`", f"`{r['command']}`"] for r in missing]
    return "\n".join([
        "## Missing rows", "",
        "These rows could not be evaluated because their checkpoint does not exist. They are not "
        "replaced by another model; make the checkpoint and run the same command again (finished rows are "
        "skipped).", "",
        md_table(["Row", "Checkpoint", "Command that makes it"], rows), "",
    ])


def fd_title(plan: dict) -> str:
    fs = plan["feature_space"]
    if fs["key"] == "fid":
        return f"Table 3: FID ({fs['name']}) ↓"
    return f"Table 3: Frechet distance, {fs['name']} ↓ — not FID, not comparable with the paper's values"


def fd_note(plan: dict) -> str:
    fs, n = plan["feature_space"], plan["scenes"]
    rank = f"rank at most {n - 1} < {fs['dim']} dimensions" if n - 1 < fs["dim"] else f"{n} images in {fs['dim']} dimensions"
    return (f"One distance per set of n = {n} generated vs n = {n} real images (same scenes), so no ±. "
            f"The covariances have {rank}: with so few images the distance is biased upwards and only rows "
            "with the same n can be compared (the paper's FIDs use whole validation sets).")


def table5(index: ResultIndex, plan: dict) -> str:
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
                     fmt_pm(e, "lpips"), fmt_pm(e, "miou"), fmt_one(e, "fd", 2), fmt_pm(e, "mean_colour_error", 2),
                     fmt_pm(e, "class_colour_error", 2)])
    if not rows:
        return "_No ablation rows were evaluated._"
    table = md_table(["FDS (inference)", "Noisy training", "FDS in training", "Row", "LPIPS ↓", "mIoU ↑", "FD ↓",
                    "Mean colour error ↓", "Class colour error ↓"], rows)
    return table + budget_warning(plan)


def budget_warning(plan: dict) -> str:
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


def bits_section(index: ResultIndex, plan: dict) -> str:
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
        rows.append([e["label"], fmt(bits, 0), fmt(None if bits is None else bits / (h * w), 4),
                     fmt(avg("channel_uses"), 0), fmt(avg("channel_uses_per_pixel"), 3),
                     fmt(avg("downsample"), 2), red(raw), f"{red(png)} / {red(jpeg)}"])
    table = md_table(["Row", "bits / image", "bits / pixel", "channel uses / image", "channel uses / pixel",
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


def equal_uses_section(index: ResultIndex, plan: dict) -> str:
    keys = [k for k in ("full-image", "ours", "equal-uses") if k in plan["shown"]]
    if "equal-uses" not in keys:
        return "_The equal-channel-uses row was not part of this run._"
    psnrs = sorted(plan["psnrs"], reverse=True)
    rows = []
    for e in index.rows(keys):
        cu = fmt_one(index.get(e["row"], psnrs[0]), "channel_uses_per_pixel", 3)
        rows.append([e["label"], cu] + [fmt_pm(index.get(e["row"], p), "miou") for p in psnrs])
        rows.append([e["label"] + " (LPIPS)", cu] + [fmt_pm(index.get(e["row"], p), "lpips") for p in psnrs])
    return "\n".join([
        "Each scene's maps are block-downsampled by the smallest factor k with "
        "maps x ceil(H/k) x ceil(W/k) <= 3 H W (the full image's channel uses); the receiver upsamples them "
        "(nearest) before FDS.", "",
        md_table(["Row", "channel uses / pixel"] + [f"{psnr_label(p)} dB" for p in psnrs], rows),
    ])


def colour_note(index: ResultIndex, plan: dict) -> str:
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


def per_class_colour_section(index: ResultIndex, plan: dict) -> str:
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
        if (empty := no_value(e)) is not None:
            return empty
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
        lines += [f"### PSNR {psnr_label(p)} dB", "",
                  md_table(["Class", "scenes", "pixels / scene"] + [h["label"] for h in heads], rows), ""]
    return "\n".join(lines).rstrip()


COLOUR_CSV_FIELDS = ["study", "row", "label", "psnr", "class_id", "class", "n", "pixels", "error_mean", "error_std"]


def colour_csv_rows(entries: list[dict]) -> list[dict[str, Any]]:
    rows = []
    for e in entries:
        for name, c in (e.get("class_colour") or {}).items():
            rows.append({"study": e["study"], "row": e["row"], "label": e["label"], "psnr": e["psnr"],
                         "class_id": c["id"], "class": name, "n": c["n"], "pixels": c["pixels"],
                         "error_mean": c["mean"], "error_std": c["std"]})
    return rows
