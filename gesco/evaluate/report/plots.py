"""The report's figures: metric against PSNR per row, sampler study plots, sample grids (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gesco.evaluate.report.format import psnr_label
from gesco.evaluate.report.statistics import ResultIndex


# --------------------------------------------------------------------------- plots and grids
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Lay out, write (110 dpi) and close a figure; returns ``path``."""
    plt = _plt()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_metrics(index: ResultIndex, plan: dict, folder: Path) -> list[Path]:
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
        ax.set_xticks(xs, [psnr_label(p) for p in psnrs])
        ax.set_xlabel("channel PSNR (dB)")
        ax.set_ylabel(title)
        ax.set_title(f"{title} against PSNR ({plan['scenes']} scenes)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        if missing:
            fig.text(0.01, 0.01, "missing (no checkpoint): " + "; ".join(missing), fontsize=6)
        paths.append(_save(fig, folder / f"{key}_vs_psnr.png"))
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
                    ax.set_ylabel(f"{psnr_label(p)} dB", fontsize=7)
                if key in ("real", "label"):
                    img = _read_png(samples / key / f"scene{s:03d}.png") if key == "label" else \
                        _read_png(samples / "real" / "real" / f"scene{s:03d}.png")
                else:
                    img = _read_png(samples / key / f"psnr{psnr_label(p)}" / f"scene{s:03d}.png")
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



def plot_samplers(index: ResultIndex, plan: dict, folder: Path) -> list[Path]:
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
            ax.set_title(f"PSNR {psnr_label(p)} dB ({plan['scenes']} scenes)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        paths.append(_save(fig, folder / f"samplers_{key}.png"))
    return paths
