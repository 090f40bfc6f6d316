"""Writing the report's files: ``report.md``, ``results.csv``, ``results.json``,
``colour_per_class.csv``, plots and sample grids."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from gesco.evaluate.report.plots import plot_metrics, plot_samplers, sample_grids
from gesco.evaluate.report.statistics import ResultIndex, summarise
from gesco.evaluate.report.studies import channel_markdown, sampler_choice, samplers_markdown
from gesco.evaluate.report.tables import COLOUR_CSV_FIELDS, colour_csv_rows, fd_note
from gesco.evaluate.store import ResultStore

CSV_FIELDS = ["study", "row", "label", "status", "psnr", "n", "n_planned", "miou_mean", "miou_std", "miou_pooled", "lpips_mean",
              "lpips_std", "ssim_mean", "ssim_std", "mean_colour_error_mean", "mean_colour_error_std",
              "class_colour_error_mean", "class_colour_error_std", "colour_n", "fd", "fd_metric", "total_bits",
              "channel_uses", "channel_uses_per_pixel", "png_bits", "jpeg_bits", "raw_bits", "downsample", "seconds",
              "sampler", "steps", "nfe", "passes", "lost", "quality", "decode_s"]


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
    index = ResultIndex(entries)
    if plan["study"] == "samplers":
        plots = plot_samplers(index, plan, out / "plots")
        grids: list[Path] = []
        extra = {"choice": sampler_choice(index, plan)}
        markdown = samplers_markdown(index, plan, commands, extra["choice"], plots, out)
    else:
        plots = plot_metrics(index, plan, out / "plots")
        grids = sample_grids(out, plan)
        extra = {}
        markdown = channel_markdown(index, plan, commands, plots, grids, out)
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
        for r in colour_csv_rows(entries):
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLOUR_CSV_FIELDS})
    slim = [{k: v for k, v in e.items() if k not in ("per_scene", "scenes")} for e in entries]
    paths["json"].write_text(json.dumps(_jsonable({"plan": plan, "commands": commands, "results": slim,
                                                   "notes": {"fd": fd_note(plan)}, **extra}), indent=2) + "\n")
    return paths
