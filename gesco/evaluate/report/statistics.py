"""Statistics of an evaluation: per row and PSNR, over its scenes (the rules are in
:mod:`gesco.evaluate.report`), and :class:`ResultIndex`, their lookup by (row, PSNR)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gesco.evaluate.metrics import MeanIoU, frechet_distance
from gesco.evaluate.metrics.frechet import FeatureStatistics
from gesco.evaluate.store import ResultStore
from gesco.semantics.classes import get_class_space

#: per-image numbers averaged into the report (besides mIoU / LPIPS / SSIM)
MEAN_KEYS = ("total_bits", "payload_bits", "header_bits", "channel_uses", "channel_uses_per_pixel", "png_bits",
             "jpeg_bits", "raw_bits", "downsample", "maps", "seconds", "measured_snr_db",
             # digital rows (gesco.evaluate.digital_rows)
             "lost", "quality", "efficiency", "bit_errors", "undetected", "encode_s", "decode_s")

#: per-image colour errors (0-255 units, :mod:`gesco.evaluate.metrics.colour`); absent in stores made before them
COLOUR_KEYS = ("mean_colour_error", "class_colour_error")

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


def frechet_of_features(fake: np.ndarray, real: np.ndarray) -> float | None:
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
                entry["fd"] = frechet_of_features(feats, real_feats[paired]) if len(paired) == len(idx) and idx else None
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


class ResultIndex:
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
