"""Held-out denoising loss at small t: did a fine-tune at small t fit the data better there?

For scenes ``0 .. --scenes-1`` of the **validation** split (their label and instance maps
through the services' stages at ``--psnr``, FDS; as ``bench/bench_sampler_ending.py``), and
each ``t`` of ``--t``, it draws ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` (paper Eq. 4;
one fixed ``eps`` per scene and ``t``, the same for every model) and reports each model's
epsilon-MSE ``mean |eps_hat - eps|^2`` (the uniform-weighted data loss, L_simple) and the
clean estimate's error ``mean |x0_hat - x_0|^2`` (0-1 image scale squared: ``x0`` in [-1, 1]
divided by 2), per ``t``, with paired differences against the first model (mean +- SE over the
scenes). A student (a ``"distilled"`` card) is read with one conditional pass; an ordinary
checkpoint with guidance ``--guidance`` (the teacher as the student imitates it) and at
scale 1 (its conditional prediction, what the data loss trains).

    OMP_NUM_THREADS=1 python bench/bench_small_t_loss.py --scenes 50 \\
        --model student=checkpoints/diffusion-synthetic-64x128-student --model ft=runs/grain-ft/ema \\
        --out bench/results/grain/small_t_loss.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch
from bench_sampler_ending import conditioning

from gesco.data.synthetic import generate_scene, split_seed
from gesco.data.transforms import image_to_tensor
from gesco.diffusion.guidance import guided_denoiser
from gesco.diffusion.pipeline import SemanticGenerator
from gesco.evaluate.paired import finite_summary as summary
from gesco.evaluate.paired import paired_difference as paired


def models(items: list[str], guidance: float) -> dict[str, tuple[SemanticGenerator, float]]:
    """``NAME=PATH`` -> (generator, scale): a student at scale 1; an ordinary checkpoint twice,
    as ``NAME`` at ``guidance`` and ``NAME cond`` at scale 1."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--model takes NAME=PATH, got {item!r}")
        gen = SemanticGenerator.load(path, device="cpu")
        if gen.card.distilled is not None:
            out[name] = (gen, 1.0)
        else:
            out[name] = (gen, guidance)
            out[f"{name} cond"] = (gen, 1.0)
    return out


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=50)
    ap.add_argument("--psnr", type=float, default=100.0)
    ap.add_argument("--t", type=int, nargs="+", default=[0, 8, 44, 100, 177])
    ap.add_argument("--model", nargs="+", required=True, help="NAME=PATH (the first is the paired baseline)")
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    nets = models(args.model, args.guidance)
    first = next(iter(nets.values()))[0]
    scenes = [(i, generate_scene(split_seed("val", i), *first.resolution)) for i in range(args.scenes)]
    cond, _ = conditioning(scenes, args.psnr, first.resolution)
    x0 = torch.stack([image_to_tensor(s.image) for _, s in scenes])
    abar = first.diffusion.alphas_cumprod
    per = {n: {t: {"eps_mse": [], "x0_mse": []} for t in args.t} for n in nets}
    for t in args.t:
        eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1000 + t))
        a = float(abar[t])
        xt = a ** 0.5 * x0 + (1 - a) ** 0.5 * eps
        tt = torch.full((x0.shape[0],), t, dtype=torch.long)
        for n, (gen, scale) in nets.items():
            eps_hat, _ = guided_denoiser(gen.model, cond, scale, gen.card.unet.image_channels)(xt, tt)
            x0_hat = ((xt - (1 - a) ** 0.5 * eps_hat) / a ** 0.5).clamp(-1, 1)
            per[n][t]["eps_mse"] = ((eps_hat - eps) ** 2).mean(dim=(1, 2, 3)).tolist()
            per[n][t]["x0_mse"] = (((x0_hat - x0) / 2) ** 2).mean(dim=(1, 2, 3)).tolist()
        print(f"t = {t}: " + ", ".join(f"{n} {np.mean(per[n][t]['eps_mse']):.4f}" for n in nets), flush=True)
    base = next(iter(nets))
    result = {
        "what": "held-out epsilon-MSE and clean-estimate MSE at small t (paper Eq. 4 noise, one eps per scene and t)",
        "split": "val", "scenes": args.scenes, "psnr_db": args.psnr, "guidance": args.guidance,
        "models": {n: {"path": str(g.card.training.get("config", {}).get("name")), "scale": s}
                   for n, (g, s) in nets.items()},
        "machine": f"the project's {os.cpu_count()}-core {platform.machine()} CPU VM (shared), "
                   f"{torch.get_num_threads()} torch thread(s)",
        "by_t": {str(t): {n: {m: {"summary": summary(per[n][t][m]), f"minus_{base}": paired(per[n][t][m], per[base][t][m])}
                              for m in ("eps_mse", "x0_mse")} for n in nets} for t in args.t},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
