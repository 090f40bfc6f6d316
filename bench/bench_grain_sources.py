"""Where does the sky's grain come from: the student's clean estimate at each step, and the teacher.

On scenes of the **validation** split at ``--psnr`` (the receiver's stages and seeds, as
``bench/grain_cache.py``), for the receiver's default (the guidance-distilled student,
``dpmpp-2m-sde-ode-mean``, 8 steps) it records the network's clean-image estimate at each of
its 8 passes, ``x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)`` (Ho et al. 2020,
Eq. 15 solved for x0), clipped to [-1, 1], and the sky's high-pass RMS of each
(:func:`gesco.evaluate.metrics.grain.high_pass_rms`), the last three also scored as images
(mIoU, LPIPS; paired against the image: would an ending that stops there keep them?); and, from the caches of
``bench/grain_cache.py``, the sky's RMS of other receivers' images of the same scenes and seeds
(e.g. the guided teacher at 20 ``dpmpp-2m-sde`` steps), paired against the student's.

    OMP_NUM_THREADS=1 python bench/bench_grain_sources.py --scenes 16 \\
        --student-cache /tmp/grain100.pt --other teacher=/tmp/teacher100.pt \\
        --out bench/results/grain_sources.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from gesco.data.synthetic import generate_scene, split_seed
from gesco.defaults import DEFAULT_SAMPLER, DEFAULT_STEPS
from gesco.diffusion.guidance import guided_denoiser
from gesco.diffusion.pipeline import SemanticGenerator, sampling_scale
from gesco.diffusion.samplers import sample
from gesco.evaluate.config import EvalConfig, scene_seed
from gesco.evaluate.metrics.grain import SKY, high_pass_rms
from gesco.evaluate.paired import paired_difference as paired
from gesco.evaluate.scoring import load_scorers
from gesco.link import TransmitSettings, apply_channel, encode_image_frame, receiver_maps
from gesco.semantics.classes import CITYSCAPES


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=16)
    ap.add_argument("--psnr", type=float, default=100.0)
    ap.add_argument("--student-cache", required=True, help="bench/grain_cache.py output of the default receiver")
    ap.add_argument("--other", nargs="*", default=[], help="NAME=CACHE.pt of other receivers (same scenes and seeds)")
    ap.add_argument("--batch-size", type=int, default=8, help="the cache's (bench/grain_cache.py default 8)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    batch = args.batch_size
    gen = SemanticGenerator.load(None, device="cpu")
    student = torch.load(args.student_cache)
    n = args.scenes
    if student["scenes"] < n or student["psnr_db"] != args.psnr:
        raise SystemExit(f"--student-cache holds {student['scenes']} scenes at {student['psnr_db']} dB; "
                         f"need {n} at {args.psnr}")
    labels = student["labels"][:n]
    conds, seeds = [], []
    for i in range(n):
        s = generate_scene(split_seed("val", i), *gen.resolution)
        t = TransmitSettings(psnr_db=args.psnr, seed=scene_seed(0, i))
        frame, _ = encode_image_frame(s.image, s.label, s.instance, space=CITYSCAPES, resolution=gen.resolution,
                                      frame_id=f"sources-{i}", transmit=t)
        conds.append(receiver_maps(apply_channel(frame), t.fds, 3).conditioning)
        seeds.append(t.seed)
    d = gen.diffusion
    finals, per_pass = [], []
    for start in range(0, n, batch):  # the cache's batches: the same float rounding, the same images
        idx = slice(start, min(start + batch, n))
        inner = guided_denoiser(gen.model, torch.stack(conds[idx]), sampling_scale(gen.card, 2.0),
                                gen.card.unet.image_channels)
        estimates: list[tuple[int, torch.Tensor]] = []

        def recording(x: torch.Tensor, t: torch.Tensor, inner=inner, estimates=estimates):
            eps, v = inner(x, t)
            ti = t.long().cpu()
            a = d.sqrt_recip_alphas_cumprod[ti].float().view(-1, 1, 1, 1)
            b = d.sqrt_recipm1_alphas_cumprod[ti].float().view(-1, 1, 1, 1)
            estimates.append((int(ti[0]), (a * x.float() - b * eps.float()).clamp(-1, 1)))
            return eps, v

        shape = (len(conds[idx]), gen.card.unet.image_channels, *gen.resolution)
        finals.append(sample(recording, d, shape, sampler=DEFAULT_SAMPLER, steps=DEFAULT_STEPS,
                             mean_temperature=gen.mean_temperature,
                             generator=[torch.Generator().manual_seed(s) for s in seeds[idx]]).clamp(-1, 1))
        per_pass.append(estimates)
    final = torch.cat(finals)
    gap = float((final - student["images"][:n]).abs().max())
    if gap > 1e-3:
        raise SystemExit(f"the re-sampled images differ from the student cache by {gap:.3g}: "
                         "not the same scenes / seeds / model / batches")
    final_rms = high_pass_rms(final, labels, SKY)
    scorers, _ = load_scorers(EvalConfig(out=Path("."), split="val"), torch.device("cpu"), CITYSCAPES)
    real = student["real"][:n]
    final_scores, _ = scorers.score(final, real, labels)
    steps = []
    for k in range(len(per_pass[0])):
        x0 = torch.cat([e[k][1] for e in per_pass])
        rms = high_pass_rms(x0, labels, SKY)
        row = {"pass": k + 1, "t": per_pass[0][k][0], "sky_hp_rms": float(np.nanmean(rms))}
        if k >= len(per_pass[0]) - 3:  # the last estimates, scored as images: would stopping there keep mIoU?
            scores, _ = scorers.score(x0, real, labels)
            for m in ("miou", "lpips"):
                a = np.array([sc[m] if sc[m] is not None else np.nan for sc in scores], dtype=np.float64)
                b = np.array([sc[m] if sc[m] is not None else np.nan for sc in final_scores], dtype=np.float64)
                row[m] = float(np.nanmean(a))
                row[f"{m}_minus_image"] = paired(a, b)
            row["sky_hp_rms_minus_image"] = paired(rms, high_pass_rms(final, labels, SKY))
        steps.append(row)
    result = {
        "what": "sky high-pass RMS of the student's clean estimate per pass, and of other receivers' images",
        "split": "val", "scenes": n, "psnr_db": args.psnr, "sampler": DEFAULT_SAMPLER, "steps": DEFAULT_STEPS,
        "machine": f"the project's {os.cpu_count()}-core {platform.machine()} CPU VM (shared), "
                   f"{torch.get_num_threads()} torch thread(s)",
        "real_sky_hp_rms": float(np.nanmean(high_pass_rms(student["real"][:n], labels, SKY))),
        "student_final_sky_hp_rms": float(np.nanmean(final_rms)), "max_abs_gap_to_cache": gap,
        "student_x0_hat_per_pass": steps,
        "others": {},
    }
    for spec in args.other:
        name, path = spec.split("=", 1)
        other = torch.load(path)
        m = min(n, other["scenes"])
        if other["psnr_db"] != args.psnr or not torch.equal(other["labels"][:m], labels[:m]):
            raise SystemExit(f"{path}: not the same scenes at {args.psnr} dB")
        rms = high_pass_rms(other["images"][:m], labels[:m], SKY)
        result["others"][name] = {"checkpoint": other["checkpoint"], "sampler": other["sampler"], "steps": other["steps"],
                                  "scenes": m, "sky_hp_rms": float(np.nanmean(rms)),
                                  "minus_student": paired(rms, final_rms[:m])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
