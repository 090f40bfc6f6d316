"""Label-aware finishing against grain: the receiver's default images, smoothed inside classes.

Scores :func:`gesco.diffusion.finishing.finish` variants on the receiver's default images of
**validation** scenes (cached by ``bench/grain_cache.py``: the same images for every variant,
so every difference is paired), the finishing driven by the receiver's own label map (after
the channel and FDS), as the receiver would run it:

* the grain: high-pass RMS over the interior of the sky in the sent label map, 0-255
  (:func:`gesco.evaluate.metrics.grain.high_pass_rms`), and of every other class;
* mIoU, LPIPS, SSIM and the colour errors as ``gesco evaluate`` scores them
  (:class:`gesco.evaluate.scoring.Scorers`), and the Frechet distance of the scorers' feature
  space (the AlexNet FD proxy) to the real scenes (few scenes: a rough number);
* the paired difference of each variant against ``off`` (the receiver's images), mean +- SE
  over the scenes (the FD proxy's: a paired bootstrap over the scenes).

    OMP_NUM_THREADS=1 python bench/grain_cache.py --scenes 40 --psnr 100 --out /tmp/grain100.pt
    OMP_NUM_THREADS=1 python bench/bench_finishing.py --cache /tmp/grain100.pt \\
        --out bench/results/finishing_psnr100.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from gesco.diffusion.finishing import Finishing, finish
from gesco.evaluate.config import EvalConfig
from gesco.evaluate.metrics.frechet import frechet_distance
from gesco.evaluate.metrics.grain import SKY, high_pass_rms
from gesco.evaluate.paired import finite_summary as summary
from gesco.evaluate.paired import paired_difference as paired
from gesco.evaluate.scoring import load_scorers
from gesco.semantics.classes import CITYSCAPES

METRICS = ("sky_hp_rms", "miou", "lpips", "ssim", "mean_colour_error", "class_colour_error")

#: the variants measured: name -> settings (``off`` is the receiver's image, the paired baseline)
VARIANTS: dict[str, Finishing] = {
    "off": Finishing(),
    "sky sigma 1": Finishing(classes=(SKY,), sigma=1.0),
    "sky sigma 1.5": Finishing(classes=(SKY,), sigma=1.5),
    "sky sigma 2": Finishing(classes=(SKY,), sigma=2.0),
    "sky sigma 4": Finishing(classes=(SKY,), sigma=4.0),
    "sky sigma 2 alpha 0.5": Finishing(classes=(SKY,), sigma=2.0, alpha=0.5),
    # the classes whose real interior high-pass RMS is below 7 on these scenes (sidewalk, wall, pole, sky)
    "smooth classes sigma 2": Finishing(classes=(8, 12, 17, SKY), sigma=2.0),
}


def class_rms(images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Mean over images of the interior high-pass RMS of every class of the sent label maps."""
    out = {}
    for c in np.unique(labels.numpy()):
        r = high_pass_rms(images, labels, int(c))
        r = r[np.isfinite(r)]
        if r.size:
            out[str(int(c))] = round(float(r.mean()), 3)
    return out


def fd(feats: np.ndarray, real: np.ndarray) -> float:
    """Frechet distance of two ``(N, D)`` feature sets (their means and covariances)."""
    return frechet_distance(real.mean(0), np.cov(real, rowvar=False), feats.mean(0), np.cov(feats, rowvar=False))


def fd_bootstrap(feats: np.ndarray, base: np.ndarray, real: np.ndarray, draws: int = 200, seed: int = 0) -> dict:
    """Paired bootstrap over scenes of ``fd(feats) - fd(base)`` (both against ``real``, the same scenes
    resampled for all three): the mean difference on the full set and the bootstrap standard error."""
    rng = np.random.default_rng(seed)
    n, diffs = len(real), []
    for _ in range(draws):
        i = rng.integers(0, n, n)
        diffs.append(fd(feats[i], real[i]) - fd(base[i], real[i]))
    return {"mean": fd(feats, real) - fd(base, real), "se": float(np.std(diffs, ddof=1)), "draws": draws}


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", required=True, help="the .pt of bench/grain_cache.py")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if "off" not in args.variants:
        raise SystemExit("--variants must include off (the paired baseline)")
    t0 = time.perf_counter()
    cache = torch.load(args.cache)
    images, real, labels, received = cache["images"], cache["real"], cache["labels"], cache["received"]
    scorers, described = load_scorers(EvalConfig(out=Path("."), split="val"), torch.device("cpu"), CITYSCAPES)
    _, real_feats = scorers.score(real, real, labels)
    per: dict[str, dict[str, list]] = {}
    extra: dict[str, dict] = {}
    feats_of: dict[str, np.ndarray] = {}
    for name in ["off"] + [v for v in args.variants if v != "off"]:
        x = finish(images, received, VARIANTS[name])
        metrics, feats = scorers.score(x, real, labels)
        per[name] = {m: [] for m in METRICS}
        per[name]["sky_hp_rms"] = high_pass_rms(x, labels, SKY).tolist()
        for m in metrics:
            for k in METRICS[1:]:
                per[name][k].append(m[k])
        feats_of[name] = feats
        extra[name] = {"fd_proxy": fd(feats, real_feats), "class_hp_rms": class_rms(x, labels),
                       "sky_hp_rms_median": float(np.nanmedian(per[name]["sky_hp_rms"])),
                       "fd_proxy_minus_off": fd_bootstrap(feats, feats_of["off"], real_feats)}
        print(f"{name}: sky RMS {np.nanmean(per[name]['sky_hp_rms']):.2f}", flush=True)
    s = VARIANTS
    result = {
        "what": "label-aware finishing (gesco.diffusion.finishing) of the receiver's default images",
        "split": cache["split"], "scenes": cache["scenes"], "psnr_db": cache["psnr_db"], "sampler": cache["sampler"],
        "steps": cache["steps"], "checkpoint": cache["checkpoint"], "edges": "uploaded",
        "finishing_labels": "the receiver's label map (argmax of the conditioning after the channel and FDS)",
        "grain_labels": "the sent label map (interior pixels)",
        "machine": f"the project's {os.cpu_count()}-core {platform.machine()} CPU VM (shared), "
                   f"{torch.get_num_threads()} torch thread(s)",
        "scorers": described,
        "real": {"sky_hp_rms": summary(high_pass_rms(real, labels, SKY).tolist()), "class_hp_rms": class_rms(real, labels)},
        "variants": {n: {"settings": {"classes": list(s[n].classes), "sigma": s[n].sigma, "alpha": s[n].alpha},
                         "summary": {m: summary(per[n][m]) for m in METRICS},
                         "minus_off": {m: paired(per[n][m], per["off"][m]) for m in METRICS},
                         **extra[n]} for n in args.variants},
        "per_scene": per,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"real sky RMS {result['real']['sky_hp_rms']['mean']:.2f}")
    for n in args.variants:
        v = result["variants"][n]
        sm, d = v["summary"], v["minus_off"]
        print(f"{n}: sky {sm['sky_hp_rms']['mean']:.2f} ({d['sky_hp_rms']['mean']:+.2f} ± {d['sky_hp_rms']['se']:.2f}) "
              f"mIoU {sm['miou']['mean']:.3f} ({d['miou']['mean']:+.4f} ± {d['miou']['se']:.4f}) "
              f"LPIPS {sm['lpips']['mean']:.4f} ({d['lpips']['mean']:+.4f} ± {d['lpips']['se']:.4f}) "
              f"FD {v['fd_proxy']:.2f} ({v['fd_proxy_minus_off']['mean']:+.2f} ± {v['fd_proxy_minus_off']['se']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
