"""Sampler ending against grain: the receiver's default with its last updates deterministic.

The receiver's default (the guidance-distilled student, ``dpmpp-2m-sde-ode-mean`` at 8 steps)
injects fresh noise at every update, the last ones included. This bench runs the same sampler
with its last ``k`` of 7 updates taking the deterministic DPM-Solver++(2M) step
(:func:`gesco.diffusion.samplers.dpmpp_2m_sde`, ``ode_tail=k``; ``k = 7`` is the ODE
solver throughout) and measures, on scenes of the **validation** split through the services'
own stages (:mod:`gesco.link`; ground-truth label and instance maps, the channel at
``--psnr``, FDS):

* the sky's grain: high-pass RMS (image minus its 3x3 box blur) over the sky's interior, 0-255
  (:func:`gesco.evaluate.metrics.grain.high_pass_rms`), also on the real scenes;
* mIoU, LPIPS and the colour errors as ``gesco evaluate`` scores them
  (:class:`gesco.evaluate.scoring.Scorers`);
* the paired difference of each ``k`` against ``k = 0`` (the default), mean +- standard error.

``k = 0`` is checked to give the receiver's images exactly (``SemanticGenerator.generate``).

    OMP_NUM_THREADS=1 python bench/bench_sampler_ending.py --scenes 50 --psnr 100 \\
        --tails 0 1 2 3 7 --out bench/results/sampler_ending.json
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

from gesco.data.synthetic import generate_scene, split_seed
from gesco.data.transforms import image_to_tensor
from gesco.defaults import DEFAULT_SAMPLER, DEFAULT_STEPS
from gesco.diffusion.guidance import guided_denoiser
from gesco.diffusion.pipeline import SemanticGenerator, sampling_scale
from gesco.diffusion.samplers import sample
from gesco.evaluate.config import EvalConfig, scene_seed
from gesco.evaluate.metrics.grain import SKY, high_pass_rms
from gesco.evaluate.paired import finite_summary as summary
from gesco.evaluate.paired import paired_difference as paired
from gesco.evaluate.scoring import load_scorers
from gesco.link import TransmitSettings, apply_channel, encode_image_frame, received_conditioning
from gesco.semantics.classes import CITYSCAPES

METRICS = ("sky_hp_rms", "miou", "lpips", "mean_colour_error", "class_colour_error")


def conditioning(scenes: list, psnr: float, resolution: tuple[int, int]) -> tuple[torch.Tensor, list[int]]:
    """The receiver's ``(B, C + 1, H, W)`` conditioning of each scene and its seed (as ``gesco evaluate``)."""
    conds, seeds = [], []
    for i, s in scenes:
        seed = scene_seed(0, i)
        t = TransmitSettings(psnr_db=psnr, seed=seed)
        frame, _ = encode_image_frame(s.image, s.label, s.instance, space=CITYSCAPES, resolution=resolution,
                                      frame_id=f"ending-{i}", transmit=t)
        conds.append(received_conditioning(apply_channel(frame), fds=t.fds))
        seeds.append(seed)
    return torch.stack(conds), seeds


def val_batch(idx: list[int], psnr: float, resolution: tuple[int, int]) -> tuple[torch.Tensor, list[int], torch.Tensor,
                                                                                 torch.Tensor]:
    """Validation scenes ``idx`` through the link: ``(conditioning, seeds, real images (B, 3, H, W) in [-1, 1],
    sent label maps (B, H, W) int64)``."""
    scenes = [(i, generate_scene(split_seed("val", i), *resolution)) for i in idx]
    cond, seeds = conditioning(scenes, psnr, resolution)
    real = torch.stack([image_to_tensor(s.image) for _, s in scenes])
    labels = torch.from_numpy(np.stack([s.label for _, s in scenes]).astype(np.int64))
    return cond, seeds, real, labels


@torch.no_grad()  # scoped, not a global switch (a caller importing this script keeps its autograd)
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=50, help="validation scenes (default 50)")
    ap.add_argument("--psnr", type=float, default=100.0)
    ap.add_argument("--tails", type=int, nargs="+", default=[0, 1, 2, 3, 7],
                    help="ode_tail values (deterministic last updates; 0 = the default)")
    ap.add_argument("--checkpoint", default=None, help="default: the receiver's student")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default="bench/results/sampler_ending.json")
    args = ap.parse_args(argv)
    if 0 not in args.tails:
        raise SystemExit("--tails must include 0 (the default, the paired baseline)")
    t_start = time.perf_counter()
    gen = SemanticGenerator.load(args.checkpoint, device="cpu")
    scorers, described = load_scorers(EvalConfig(out=Path("."), split="val"), torch.device("cpu"), CITYSCAPES)
    guidance = TransmitSettings().guidance_scale
    per: dict[int, dict[str, list]] = {k: {m: [] for m in METRICS} for k in args.tails}
    real_rms: list[float] = []
    seconds: dict[int, float] = {k: 0.0 for k in args.tails}
    checked = False
    for start in range(0, args.scenes, args.batch_size):
        idx = list(range(start, min(start + args.batch_size, args.scenes)))
        cond, seeds, real, labels = val_batch(idx, args.psnr, gen.resolution)
        real_rms += high_pass_rms(real, labels, SKY).tolist()
        denoiser = guided_denoiser(gen.model, cond, sampling_scale(gen.card, guidance), gen.card.unet.image_channels)
        shape = (len(idx), gen.card.unet.image_channels, *gen.resolution)
        for k in args.tails:
            t0 = time.perf_counter()
            imgs = sample(denoiser, gen.diffusion, shape, sampler="dpmpp-2m-sde-ode-mean", steps=DEFAULT_STEPS, ode_tail=k,
                          mean_temperature=gen.mean_temperature, generator=[torch.Generator().manual_seed(s) for s in seeds]).clamp(-1, 1)
            seconds[k] += time.perf_counter() - t0
            if k == 0 and not checked:  # the baseline is the receiver's own image
                ref = gen.generate(cond, [TransmitSettings(seed=s).to_sampling() for s in seeds])
                if not torch.equal(ref, imgs):
                    raise SystemExit(f"ode_tail=0 differs from the receiver's images by {(ref - imgs).abs().max():.3g}")
                checked = True
            metrics, _ = scorers.score(imgs, real, labels)
            rms = high_pass_rms(imgs, labels, SKY)
            for j, m in enumerate(metrics):
                per[k]["sky_hp_rms"].append(float(rms[j]))
                for name in METRICS[1:]:
                    per[k][name].append(m[name])
        print(f"{idx[-1] + 1}/{args.scenes} scenes", flush=True)

    result = {
        "what": "receiver default (student, dpmpp-2m-sde-ode-mean, 8 steps) with its last k updates deterministic",
        "sampler": DEFAULT_SAMPLER, "steps": DEFAULT_STEPS, "checkpoint": str(args.checkpoint or "shipped student"),
        "split": "val", "scenes": args.scenes, "psnr_db": args.psnr, "edges": "uploaded",
        "machine": f"the project's {os.cpu_count()}-core {platform.machine()} CPU VM (shared), "
                   f"{torch.get_num_threads()} torch thread(s)",
        "scorers": described,
        "real_sky_hp_rms": summary(real_rms),
        "tails": {str(k): {"summary": {m: summary(per[k][m]) for m in METRICS},
                           "minus_default": {m: paired(per[k][m], per[0][m]) for m in METRICS},
                           "sampling_seconds_per_image": seconds[k] / args.scenes} for k in args.tails},
        "per_scene": {str(k): per[k] for k in args.tails},
        "real_per_scene": real_rms,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"real sky high-pass RMS {result['real_sky_hp_rms']['mean']:.2f}")
    for k in args.tails:
        s, d = result["tails"][str(k)]["summary"], result["tails"][str(k)]["minus_default"]
        print(f"ode_tail {k}: sky RMS {s['sky_hp_rms']['mean']:.2f} (Δ {d['sky_hp_rms']['mean']:+.2f} ± "
              f"{d['sky_hp_rms']['se']:.2f}), mIoU {s['miou']['mean']:.3f} (Δ {d['miou']['mean']:+.4f} ± "
              f"{d['miou']['se']:.4f}), LPIPS {s['lpips']['mean']:.3f} (Δ {d['lpips']['mean']:+.4f} ± "
              f"{d['lpips']['se']:.4f}), colour {s['mean_colour_error']['mean']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
