"""Grain against the sampler's ending and a short fine-tune (issue 24, item 4), paired on val scenes.

For scenes ``0 .. --scenes-1`` of the **validation** split at ``--psnr`` (ground-truth label
and instance maps through the services' stages, FDS, the receiver's seeds; as
``bench/bench_sampler_ending.py``) it generates the receiver's default images (the
guidance-distilled student, ``dpmpp-2m-sde-ode-mean``, 8 steps; checked bit for bit against
``SemanticGenerator.generate``) and these endings of the same chains:

* ``stop k`` (k = 5, 6, 7): the clean estimate ``x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) /
  sqrt(abar_t)`` (clipped) of pass ``k`` of 8, returned instead of finishing: the sampler run
  on the first ``k`` points of the 8-step grid (the ``stop_after`` option of
  :func:`gesco.diffusion.samplers.sample`, checked to equal the recorded estimate);
* ``mean of passes 6-8``: the average of the clean estimates of the last three passes (free);
* ``ode_tail k``: the last ``k`` updates deterministic (the registry's ``ode_tail`` option);
* ``8 passes to t=T_END``: 8 passes on a log-SNR grid from ``T - 1`` down to ``T_END`` (the
  default's cost) returning ``x0_hat`` there;

and, for every ``--checkpoint NAME=PATH`` (e.g. a fine-tune of the student), that
checkpoint's default images and its ``stop k`` endings; with ``--switch-t S`` also the
*switched* chain: the shipped student for ``t >= S`` and that checkpoint below (a fine-tune at
``t < S`` judged on the passes it was trained for, the others left as shipped). Each is scored as ``gesco evaluate``
scores images (:class:`gesco.evaluate.scoring.Scorers`: mIoU, LPIPS, SSIM, colour errors)
plus the sky's grain (:func:`gesco.evaluate.metrics.grain.high_pass_rms`, interior of the sent
sky, 0-255) and the FD proxy (Frechet distance of the scorers' AlexNet features to the real
scenes'); every variant is paired against ``default`` (mean +- standard error over the
scenes; the FD proxy's error: a paired bootstrap over the scenes).

    OMP_NUM_THREADS=1 python bench/bench_grain_endings.py --scenes 50 --psnr 100 \\
        --checkpoint ft=runs/grain-ft/ema --switch-t 200 --out bench/results/grain/endings_psnr100.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from bench_finishing import fd, fd_bootstrap
from bench_sampler_ending import val_batch

from gesco.defaults import DEFAULT_SAMPLER, DEFAULT_STEPS
from gesco.diffusion.gaussian import GaussianDiffusion
from gesco.diffusion.guidance import guided_denoiser
from gesco.diffusion.pipeline import SemanticGenerator, sampling_scale
from gesco.diffusion.samplers import REGISTRY, noise_source, sample, scale_start_mean
from gesco.evaluate.config import EvalConfig
from gesco.evaluate.metrics.grain import SKY, high_pass_rms
from gesco.evaluate.paired import finite_summary as summary
from gesco.evaluate.paired import paired_difference as paired
from gesco.evaluate.scoring import load_scorers
from gesco.link import TransmitSettings
from gesco.semantics.classes import CITYSCAPES

METRICS = ("sky_hp_rms", "miou", "lpips", "ssim", "mean_colour_error", "class_colour_error")
STOPS = (5, 6, 7)
TAILS = (1, 2)


def logsnr_grid_to(diffusion: GaussianDiffusion, steps: int, t_end: int) -> GaussianDiffusion:
    """``steps`` time indices from ``T - 1`` down to ``t_end``, evenly spaced in log-SNR (each
    target goes to the nearest index, kept strictly increasing), as a respaced chain."""
    abar = diffusion.alphas_cumprod
    neg_lam = -0.5 * torch.log(abar / (1.0 - abar))  # increasing in the index
    targets = torch.linspace(float(neg_lam[t_end]), float(neg_lam[-1]), steps, dtype=torch.float64)
    keep: list[int] = []
    for target in targets.tolist():
        idx = int(torch.argmin((neg_lam - target).abs()))
        keep.append(max(idx, keep[-1] + 1) if keep else idx)
    if keep[0] != t_end or keep[-1] != diffusion.num_steps - 1:
        raise ValueError(f"grid {keep} does not run from {diffusion.num_steps - 1} to {t_end}")
    return diffusion.respaced(keep)


class Recorder:
    """A denoiser that records the clipped clean estimate ``x0_hat`` of every call (one per pass)."""

    def __init__(self, denoiser: Callable, diffusion: GaussianDiffusion) -> None:
        self.denoiser, self.abar, self.x0 = denoiser, diffusion.alphas_cumprod, []

    def __call__(self, x: torch.Tensor, t: torch.Tensor):
        eps, v = self.denoiser(x, t)
        if not bool((t == t[0]).all()):
            raise ValueError("the recorder expects one time index per call")
        a = float(self.abar[int(t[0])])  # as the samplers compute it (gesco.diffusion.samplers._x0_from_eps)
        self.x0.append(((x - math.sqrt(1.0 - a) * eps) / math.sqrt(a)).clamp(-1.0, 1.0))
        return eps, v


def _generators(seeds: list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def denoiser_of(gen: SemanticGenerator, cond: torch.Tensor) -> Callable:
    """The receiver's denoiser of ``gen``'s model on ``cond`` (a student: one conditional pass)."""
    return guided_denoiser(gen.model, cond, sampling_scale(gen.card, TransmitSettings().guidance_scale),
                           gen.card.unet.image_channels)


def switched(high: Callable, low: Callable, switch_t: int) -> Callable:
    """A denoiser that asks ``low`` for ``t < switch_t`` and ``high`` otherwise (one ``t`` per call)."""
    return lambda x, t: low(x, t) if int(t[0]) < switch_t else high(x, t)


def recorded_endings(gen: SemanticGenerator, cond: torch.Tensor, seeds: list[int], prefix: str,
                     seconds: dict[str, float], denoiser: Callable | None = None) -> dict[str, torch.Tensor]:
    """The default images of ``gen`` (or of ``denoiser`` on ``gen``'s chain) and the free endings of
    the same chains (``stop k``, the mean of passes 6-8), each ``(B, 3, H, W)`` in ``[-1, 1]``;
    ``stop k`` re-sampled with ``stop_after`` once and checked against the recording."""
    denoiser = denoiser or denoiser_of(gen, cond)
    rec = Recorder(denoiser, gen.diffusion)
    shape = (cond.shape[0], gen.card.unet.image_channels, *gen.resolution)
    t0 = time.perf_counter()
    image = sample(rec, gen.diffusion, shape, sampler=DEFAULT_SAMPLER, steps=DEFAULT_STEPS,
                   mean_temperature=gen.mean_temperature, generator=_generators(seeds)).clamp(-1, 1)
    seconds[prefix] = seconds.get(prefix, 0.0) + time.perf_counter() - t0
    if len(rec.x0) != DEFAULT_STEPS or not torch.equal(rec.x0[-1], image):
        raise SystemExit(f"{prefix}: the recorded last pass is not the image")
    out = {prefix: image, f"{prefix} mean of passes 6-8": torch.stack(rec.x0[5:8]).mean(0)}
    for k in STOPS:
        out[f"{prefix} stop {k}"] = rec.x0[k - 1]
    check = sample(denoiser, gen.diffusion, shape, sampler=DEFAULT_SAMPLER, steps=DEFAULT_STEPS,
                   stop_after=6, mean_temperature=gen.mean_temperature, generator=_generators(seeds)).clamp(-1, 1)
    if not torch.equal(check, rec.x0[5]):
        raise SystemExit(f"{prefix}: stop_after=6 differs from the recorded pass 6 by {(check - rec.x0[5]).abs().max():.3g}")
    return out


def sampled_endings(gen: SemanticGenerator, cond: torch.Tensor, seeds: list[int], t_end: int,
                    seconds: dict[str, float]) -> dict[str, torch.Tensor]:
    """The endings that cost a chain of their own: ``ode_tail k`` and 8 passes to ``t_end``."""
    denoiser = denoiser_of(gen, cond)
    shape = (cond.shape[0], gen.card.unet.image_channels, *gen.resolution)
    out = {}
    for k in TAILS:
        t0 = time.perf_counter()
        out[f"ode_tail {k}"] = sample(denoiser, gen.diffusion, shape, sampler=DEFAULT_SAMPLER, steps=DEFAULT_STEPS,
                                      ode_tail=k, mean_temperature=gen.mean_temperature,
                                      generator=_generators(seeds)).clamp(-1, 1)
        seconds[f"ode_tail {k}"] = seconds.get(f"ode_tail {k}", 0.0) + time.perf_counter() - t0
    grid = logsnr_grid_to(gen.diffusion, DEFAULT_STEPS, t_end)
    name = f"8 passes to t={t_end}"
    t0 = time.perf_counter()
    noise = noise_source(_generators(seeds), "cpu")  # x_T first, then every later draw: as sample() draws
    x_T = scale_start_mean(noise(shape), gen.mean_temperature)  # as sample() starts
    out[name] = REGISTRY[DEFAULT_SAMPLER].function(denoiser, x_T, grid, noise=noise, clip=True,
                                                   progress=None).clamp(-1, 1)
    seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
    return out


class Tally:
    """Per-scene scores and Frechet features of every variant, in scene order."""

    def __init__(self) -> None:
        self.per: dict[str, dict[str, list]] = {}
        self.feats: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, metrics: list[dict], rms: np.ndarray, feats: np.ndarray) -> None:
        row = self.per.setdefault(name, {m: [] for m in METRICS})
        row["sky_hp_rms"] += [float(r) for r in rms]
        for m in metrics:
            for k in METRICS[1:]:
                row[k].append(m[k])
        self.feats.setdefault(name, []).append(feats)


def parse_checkpoints(items: list[str]) -> dict[str, str]:
    """``NAME=PATH`` pairs (names unique, not ``default``)."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path or name in out or name == "default":
            raise SystemExit(f"--checkpoint takes NAME=PATH with a new name other than 'default', got {item!r}")
        out[name] = path
    return out


def report(tally: Tally, real_feats: np.ndarray, real_rms: list[float], seconds: dict[str, float], args,
           described: dict, cards: dict[str, dict]) -> dict:
    """The JSON record: summaries, paired differences against ``default``, FD proxy, per-scene values."""
    feats = {n: np.concatenate(f) for n, f in tally.feats.items()}
    base = tally.per["default"]
    variants = {}
    for n, row in tally.per.items():
        variants[n] = {"summary": {m: summary(row[m]) for m in METRICS},
                       "minus_default": {m: paired(row[m], base[m]) for m in METRICS},
                       "sky_hp_rms_median": float(np.nanmedian(row["sky_hp_rms"])),
                       "fd_proxy": fd(feats[n], real_feats),
                       "fd_proxy_minus_default": fd_bootstrap(feats[n], feats["default"], real_feats)}
    return {
        "what": "sampler endings and checkpoints against the sky's grain (issue 24, item 4), paired against the "
                "receiver's default (student, dpmpp-2m-sde-ode-mean, 8 steps)",
        "split": "val", "scenes": args.scenes, "psnr_db": args.psnr, "edges": "uploaded",
        "grain_labels": "the sent label map (interior pixels)",
        "machine": f"the project's {os.cpu_count()}-core {platform.machine()} CPU VM (shared), "
                   f"{torch.get_num_threads()} torch thread(s)",
        "scorers": described, "checkpoints": cards,
        "real_sky_hp_rms": summary(real_rms),
        "sampling_seconds_per_image": {k: v / args.scenes for k, v in seconds.items()},
        "variants": variants,
        "per_scene": tally.per,
    }


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=50, help="validation scenes (default 50)")
    ap.add_argument("--psnr", type=float, default=100.0)
    ap.add_argument("--t-end", type=int, default=44, help="the last time index of the '8 passes to t' grid")
    ap.add_argument("--checkpoint", nargs="*", default=[], help="NAME=PATH: other checkpoints' default and stop endings")
    ap.add_argument("--no-sampled", action="store_true", help="leave out ode_tail and the 8-passes-to-t grid")
    ap.add_argument("--switch-t", type=int, default=0,
                    help="also: the shipped student for t >= this, each --checkpoint below it (0: not run)")
    ap.add_argument("--only-switched", action="store_true",
                    help="of the --checkpoint models, only the switched variants (with the default)")
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    others = parse_checkpoints(args.checkpoint)
    t_start = time.perf_counter()
    gens = {"default": SemanticGenerator.load(None, device="cpu"),
            **{n: SemanticGenerator.load(p, device="cpu") for n, p in others.items()}}
    shipped = gens["default"]
    scorers, described = load_scorers(EvalConfig(out=Path("."), split="val"), torch.device("cpu"), CITYSCAPES)
    tally, real_rms, real_feats, seconds, checked = Tally(), [], [], {}, False
    for start in range(0, args.scenes, args.batch_size):
        idx = list(range(start, min(start + args.batch_size, args.scenes)))
        cond, seeds, real, labels = val_batch(idx, args.psnr, shipped.resolution)
        real_rms += high_pass_rms(real, labels, SKY).tolist()
        real_feats.append(scorers.score(real, real, labels)[1])
        images = {}
        for name, g in gens.items():
            if name == "default" or not args.only_switched:
                images.update(recorded_endings(g, cond, seeds, name, seconds))
            if name != "default" and args.switch_t:  # the shipped student above switch_t, this one below
                both = switched(denoiser_of(shipped, cond), denoiser_of(g, cond), args.switch_t)
                images.update(recorded_endings(shipped, cond, seeds, f"default, {name} below t={args.switch_t}",
                                               seconds, both))
        if not checked:  # the baseline is the receiver's own image
            ref = shipped.generate(cond, [TransmitSettings(seed=s).to_sampling() for s in seeds])
            if not torch.equal(ref, images["default"]):
                raise SystemExit(f"default differs from the receiver's images by {(ref - images['default']).abs().max():.3g}")
            checked = True
        if not args.no_sampled:
            images.update(sampled_endings(shipped, cond, seeds, args.t_end, seconds))
        for name, x in images.items():
            metrics, feats = scorers.score(x, real, labels)
            tally.add(name, metrics, high_pass_rms(x, labels, SKY), feats)
        print(f"{idx[-1] + 1}/{args.scenes} scenes, {time.perf_counter() - t_start:.0f} s", flush=True)
    cards = {n: {"path": str(others.get(n, "shipped student")), "training": g.card.training.get("config", {}).get("name")}
             for n, g in gens.items()}
    result = report(tally, np.concatenate(real_feats), real_rms, seconds, args, described, cards)
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"real sky RMS {result['real_sky_hp_rms']['mean']:.2f}")
    for n, v in result["variants"].items():
        s, d, f = v["summary"], v["minus_default"], v["fd_proxy_minus_default"]
        print(f"{n}: sky {s['sky_hp_rms']['mean']:.2f} ({d['sky_hp_rms']['mean']:+.2f} ± {d['sky_hp_rms']['se']:.2f}) "
              f"mIoU {s['miou']['mean']:.3f} ({d['miou']['mean']:+.4f} ± {d['miou']['se']:.4f}) "
              f"LPIPS {s['lpips']['mean']:.4f} ({d['lpips']['mean']:+.4f} ± {d['lpips']['se']:.4f}) "
              f"FD {v['fd_proxy']:.2f} ({f['mean']:+.2f} ± {f['se']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
