"""How much of the image's mean colour the seed sets, when the starting noise's mean is scaled.

Under ``dpmpp-2m-sde-ode-mean`` the image's per-channel mean follows the deterministic ODE from
``mean(x_T)`` (:func:`gesco.diffusion.samplers.dpmpp_2m_sde`), so the seed reaches the mean colour
only through the starting noise's mean. This benchmark scales it with the receiver's own setting,
the mean temperature (``SamplingSettings.mean_temperature``, applied by
:func:`gesco.diffusion.samplers.scale_start_mean`: ``x_T <- x_T - (1 - tau) mean(x_T)`` per
channel; ``tau = 1`` is the paper's sampling, ``tau = 0`` starts the mean at 0, so that the ODE
ends near the prior's mean colour for these maps). Same scenes, seeds and sampler as
``scripts/colour_study.py --settings student8-g2`` (the first ``--scenes`` **validation**
scenes, clean maps, seed ``1000 i + k`` for seed ``k`` of scene ``i``; each image is sampled by
:meth:`gesco.diffusion.pipeline.SemanticGenerator.generate`, as the receiver samples it, so
``tau = 1`` reproduces colour_study's images). Scores: colour_study's mean colour error and seed spread, and the
evaluation's mIoU and LPIPS (:class:`gesco.evaluate.runner.Scorers`) over all images, each row
paired with the first over the same images.

    OMP_NUM_THREADS=1 python bench/bench_mean_temperature.py \
        meanfit=checkpoints/diffusion-synthetic-64x128-student-meanfit --tau 1 0.5 0 \
        --out bench/results/mean_temperature

A checkpoint given as ``NAME=PATH@TAU,TAU`` is run at its own taus instead of ``--tau`` (e.g. today's
default against the candidate: ``student=...-student@1 meanfit=...-meanfit@0.5``).

Writes ``OUT/mean_temperature.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gesco.data.synthetic import SyntheticScenes
from gesco.diffusion.checkpoint import load_checkpoint
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator
from gesco.diffusion.samplers import check_mean_temperature
from gesco.errors import GescoInputError
from gesco.evaluate.paired import paired_difference
from gesco.evaluate.runner import EvalConfig, load_scorers
from gesco.semantics.classes import get_class_space
from gesco.train.data import make_batch

SAMPLER, STEPS, GUIDANCE = "dpmpp-2m-sde-ode-mean", 8, 2.0  # the receiver's default (colour_study's student8-g2)


def run(name: str, path: str, taus: list[float], n_scenes: int, seeds: int, scorers) -> list[dict]:
    model, card = load_checkpoint(path)
    gen = SemanticGenerator(model, card, "cpu")
    h, w = card.resolution
    ds = SyntheticScenes(split="val", size=n_scenes, height=h, width=w)
    batch = make_batch(ds, list(range(n_scenes)), get_class_space(card.class_space))
    x0 = batch["image"].repeat_interleave(seeds, 0)
    cond = batch["cond"].repeat_interleave(seeds, 0)
    labels = torch.stack([ds[i]["label"] for i in range(n_scenes)]).long().repeat_interleave(seeds, 0)
    seed_list = [1000 * i + k for i in range(n_scenes) for k in range(seeds)]
    rows = []
    for tau in taus:
        t0 = time.perf_counter()
        settings = [SamplingSettings(sampler=SAMPLER, steps=STEPS, guidance_scale=GUIDANCE, seed=s, mean_temperature=tau)
                    for s in seed_list]
        imgs = gen.generate(cond, settings)
        wall = time.perf_counter() - t0
        metrics, _ = scorers.score(imgs, x0, labels)
        mean_gen = (imgs.mean((2, 3)) * 127.5).view(n_scenes, seeds, 3)
        spread = mean_gen.std(dim=1, unbiased=True).pow(2).mean(1).sqrt()  # colour_study's seed spread
        miou = [m["miou"] for m in metrics if m["miou"] is not None]
        rows.append({
            "checkpoint": name, "path": path, "tau": tau, "images": len(seed_list),
            "mean_colour_err": round(float(np.mean([m["mean_colour_error"] for m in metrics])), 2),
            "seed_spread": round(float(spread.mean()), 2),
            "seed_var_per_channel": round(float(mean_gen.var(dim=1, unbiased=True).mean()), 1),
            "miou": round(float(np.mean(miou)), 4), "lpips": round(float(np.mean([m["lpips"] for m in metrics])), 4),
            "wall_s": round(wall, 1),
            "per_image": {k: [m[k] for m in metrics] for k in ("miou", "lpips", "mean_colour_error")},
        })
        print({k: v for k, v in rows[-1].items() if k != "per_image"}, flush=True)
    return rows


def paired(row: dict, base: dict, key: str) -> tuple[float, float]:
    """Mean and standard error of ``row - base`` over the images both scored (same scenes and seeds)."""
    d = paired_difference(row["per_image"][key], base["per_image"][key])
    return d["mean"], d["se"]


def checkpoint_taus(spec: str, default_taus: list[float]) -> tuple[str, str, list[float]]:
    """``NAME=PATH[@TAU,TAU]`` -> ``(name, path, taus)``; every tau checked (``SystemExit`` naming it)."""
    name, _, rest = spec.rpartition("=")
    path, at, own = rest.partition("@")
    try:
        taus = [float(t) for t in own.split(",")] if at else list(default_taus)
        for t in taus:
            check_mean_temperature(t)
    except (ValueError, GescoInputError) as e:
        raise SystemExit(f"--tau: {e}" if isinstance(e, GescoInputError) else f"{spec}: taus must be numbers ({e})") from None
    return name or Path(path).name, path, taus


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="NAME=PATH or NAME=PATH@TAU,TAU (its own taus)")
    ap.add_argument("--tau", type=float, nargs="+", default=[1.0, 0.5, 0.0])
    ap.add_argument("--scenes", type=int, default=12)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--out", default="bench/results/mean_temperature")
    args = ap.parse_args(argv)
    runs = [checkpoint_taus(spec, args.tau) for spec in args.checkpoints]
    torch.set_num_threads(1)
    out = Path(args.out)
    scorers, described = load_scorers(EvalConfig(out=out, split="val"), torch.device("cpu"), get_class_space("cityscapes"))
    rows = []
    for name, path, taus in runs:
        rows += run(name, path, taus, args.scenes, args.seeds, scorers)
    result = {"command": "python bench/bench_mean_temperature.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "split": "val", "scenes": args.scenes, "seeds": args.seeds, "sampler": SAMPLER, "steps": STEPS,
              "machine": platform.machine(), "processor": platform.processor(), "torch_threads": 1,
              "scorers": described, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "mean_temperature.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# Seed and mean colour against the starting noise's mean scale tau", "",
             f"Command: `{result['command']}`", "",
             f"{args.scenes} validation scenes x {args.seeds} seeds, clean maps, {SAMPLER} {STEPS} steps; "
             "colours 0-255; spread: std over seeds of the image mean RGB (RMS over channels), mean over scenes.", "",
             "| checkpoint | tau | images | mean colour error | seed spread | seed variance / channel | mIoU | LPIPS | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['checkpoint']} | {r['tau']:g} | {r['images']} | {r['mean_colour_err']:.1f} | {r['seed_spread']:.1f} | "
              f"{r['seed_var_per_channel']:.0f} | {r['miou']:.3f} | {r['lpips']:.3f} | {r['wall_s']} |" for r in rows]
    base = rows[0]
    lines += ["", f"Paired against the first row ({base['checkpoint']}, tau {base['tau']:g}), over the same images "
              "(mean +- standard error):", "", "| checkpoint | tau | mIoU diff | LPIPS diff | mean colour error diff |",
              "|---|---|---|---|---|"]
    for r in rows[1:]:
        cells = [paired(r, base, k) for k in ("miou", "lpips", "mean_colour_error")]
        lines.append(f"| {r['checkpoint']} | {r['tau']:g} | " + " | ".join(f"{m:+.4f} +- {e:.4f}" for m, e in cells) + " |")
    (out / "mean_temperature.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
