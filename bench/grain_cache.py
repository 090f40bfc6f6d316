"""The receiver's default images of validation scenes, cached for the grain benches.

Generates, for scenes ``0 .. --scenes-1`` of the **validation** split at ``--psnr``, exactly
what the receiver generates (ground-truth label and instance maps through the services'
stages, FDS, the default student and sampler, the receiver's seeds) and writes a ``.pt`` with
``images`` / ``real`` ``(N, 3, H, W)`` float32 in ``[-1, 1]``, ``labels`` (the sent label maps)
and ``received`` (the receiver's label maps after FDS) ``(N, H, W)`` int64, plus the settings.
Used by ``bench/bench_finishing.py`` so that every finishing variant is scored on the same images.
``--checkpoint checkpoints/diffusion-synthetic-64x128 --sampler dpmpp-2m-sde --steps 20`` gives
the guided teacher's images of the same scenes and seeds (where does the grain come from?).

    OMP_NUM_THREADS=1 python bench/grain_cache.py --scenes 40 --psnr 100 --out /tmp/grain_cache.pt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from gesco.data.synthetic import generate_scene, split_seed
from gesco.data.transforms import image_to_tensor
from gesco.defaults import DEFAULT_SAMPLER, DEFAULT_STEPS
from gesco.diffusion.finishing import received_labels
from gesco.diffusion.pipeline import SemanticGenerator
from gesco.evaluate.config import scene_seed
from gesco.link import TransmitSettings, apply_channel, encode_image_frame, receiver_maps
from gesco.semantics.classes import CITYSCAPES


@torch.no_grad()
def build(scenes: int, psnr: float, checkpoint: str | None, batch_size: int,
          sampler: str = DEFAULT_SAMPLER, steps: int = DEFAULT_STEPS) -> dict:
    """Generate the receiver's images of ``scenes`` validation scenes (see the module doc);
    ``sampler`` / ``steps`` other than the defaults: the same scenes and seeds another way (the teacher's)."""
    gen = SemanticGenerator.load(checkpoint, device="cpu")
    images, real, labels, received = [], [], [], []
    t0 = time.perf_counter()
    for start in range(0, scenes, batch_size):
        idx = list(range(start, min(start + batch_size, scenes)))
        conds, settings = [], []
        for i in idx:
            s = generate_scene(split_seed("val", i), *gen.resolution)
            t = TransmitSettings(psnr_db=psnr, seed=scene_seed(0, i), sampler=sampler, steps=steps)
            frame, _ = encode_image_frame(s.image, s.label, s.instance, space=CITYSCAPES, resolution=gen.resolution,
                                          frame_id=f"grain-{i}", transmit=t)
            cond = receiver_maps(apply_channel(frame), t.fds, 3).conditioning
            conds.append(cond)
            settings.append(t.to_sampling())
            real.append(image_to_tensor(s.image))
            labels.append(torch.from_numpy(s.label.astype(np.int64)))
            received.append(received_labels(cond[None])[0])
        images.append(gen.generate(torch.stack(conds), settings))
        print(f"{idx[-1] + 1}/{scenes} scenes, {time.perf_counter() - t0:.0f} s", flush=True)
    return {"images": torch.cat(images), "real": torch.stack(real), "labels": torch.stack(labels),
            "received": torch.stack(received), "split": "val", "scenes": scenes, "psnr_db": psnr,
            "sampler": sampler, "steps": steps, "checkpoint": str(checkpoint or "shipped student"),
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--psnr", type=float, default=100.0)
    ap.add_argument("--checkpoint", default=None, help="default: the receiver's student")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--sampler", default=DEFAULT_SAMPLER)
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.save(build(args.scenes, args.psnr, args.checkpoint, args.batch_size, args.sampler, args.steps), Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
