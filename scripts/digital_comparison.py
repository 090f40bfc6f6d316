"""Combine ``gesco evaluate --methods digital`` runs on several channels into one comparison.

    python scripts/digital_comparison.py --run awgn=runs/eval-digital-awgn --run rayleigh=runs/eval-digital-rayleigh \
        --out docs/evaluation/digital

Reads each run's ``results.json`` (written by the evaluation's report) and writes
``OUT/plots/{miou,lpips}_vs_psnr.png`` (one panel per channel, one line per row) and
``OUT/tables.md`` (per channel: mIoU, LPIPS, channel uses per pixel and frames lost, per row
and PSNR). The numbers are the runs' own; nothing is recomputed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def _load(path: Path) -> dict:
    data = json.loads((path / "results.json").read_text())
    return data


def _fmt(x, digits=3):
    return "—" if x is None else f"{x:.{digits}f}"


def tables(runs: dict[str, dict]) -> str:
    out = []
    for name, data in runs.items():
        plan, results = data["plan"], data["results"]
        psnrs = sorted(plan["psnrs"])
        rows = [r for r in plan["rows"] if r["method"]["key"] in plan["shown"] and r["method"]["kind"] != "real"]
        get = {(e["row"], e["psnr"]): e for e in results}
        real = next((e for e in results if e["row"] == "real"), None)
        out += [f"## Channel `{name}` {plan.get('channel_params') or ''} ({plan['scenes']} scenes, sampler "
                f"{plan['sampler']}-{plan['steps']})", ""]
        if real:
            out += [f"Real images (ceiling): mIoU {_fmt(real.get('miou_mean'))}, LPIPS {_fmt(real.get('lpips_mean'))}.", ""]
        for key, title in (("miou", "mIoU ↑ (mean ± std over scenes)"), ("lpips", "LPIPS ↓ (mean ± std over scenes)")):
            out += [f"### {title}", "", "| row | " + " | ".join(f"{p:g} dB" for p in psnrs) + " |",
                    "|---|" + "---|" * len(psnrs)]
            for r in rows:
                cells = []
                for p in psnrs:
                    e = get.get((r["method"]["key"], p))
                    cells.append("—" if not e or e.get(f"{key}_mean") is None
                                 else f"{e[f'{key}_mean']:.3f} ± {e.get(f'{key}_std') or 0:.3f}")
                out.append(f"| {r['method']['label']} | " + " | ".join(cells) + " |")
            out.append("")
        out += ["### Channel uses per pixel / frames lost", "", "| row | " + " | ".join(f"{p:g} dB" for p in psnrs) + " |",
                "|---|" + "---|" * len(psnrs)]
        for r in rows:
            cells = []
            for p in psnrs:
                e = get.get((r["method"]["key"], p))
                if not e:
                    cells.append("—")
                    continue
                cu = _fmt(e.get("channel_uses_per_pixel"), 2)
                lost = e.get("lost")
                cells.append(cu + ("" if lost is None else f" / {100 * lost:.0f} % lost"))
            out.append(f"| {r['method']['label']} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def plots(runs: dict[str, dict], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, title in (("miou", "mIoU ↑"), ("lpips", "LPIPS ↓")):
        fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 5.2), sharey=True, squeeze=False)
        keys = []  # one colour per row key, the same in every panel
        for data in runs.values():
            keys += [r["method"]["key"] for r in data["plan"]["rows"] if r["method"]["key"] not in keys]
        colour = {k: f"C{i % 10}" for i, k in enumerate(keys)}
        handles: dict[str, Any] = {}
        for ax, (name, data) in zip(axes[0], runs.items()):
            plan, results = data["plan"], data["results"]
            psnrs = sorted(plan["psnrs"])
            xs = np.arange(len(psnrs))
            get = {(e["row"], e["psnr"]): e for e in results}
            for r in plan["rows"]:
                k = r["method"]["key"]
                if k not in plan["shown"]:
                    continue
                if r["method"]["kind"] == "real":
                    e = get.get((k, None))
                    if e and e.get(f"{key}_mean") is not None:
                        handles[r["method"]["label"]] = ax.axhline(e[f"{key}_mean"], color="k", ls="--", lw=1)
                    continue
                ys = [np.nan if not get.get((k, p)) or get[(k, p)].get(f"{key}_mean") is None else get[(k, p)][f"{key}_mean"]
                      for p in psnrs]
                style = "--" if r["method"]["kind"].startswith("digital") else "-"
                (line,) = ax.plot(xs, ys, style, marker="o", lw=1.5, color=colour[k])
                handles[r["method"]["label"]] = line
            ax.set_xticks(xs, [f"{p:g}" for p in psnrs])
            ax.set_xlabel("channel PSNR (dB), average SNR on the fading channel")
            ax.set_title(f"{title}: {name} ({plan['scenes']} scenes)")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(title)
        fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=4, fontsize=8)
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        path = folder / f"{key}_vs_psnr.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, metavar="NAME=FOLDER")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    runs = {}
    for item in args.run:
        name, _, folder = item.partition("=")
        runs[name] = _load(Path(folder))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tables.md").write_text(tables(runs) + "\n")
    for p in plots(runs, args.out / "plots"):
        print("wrote", p)
    print("wrote", args.out / "tables.md")


if __name__ == "__main__":
    main()
