"""Make the README's picture: a test scene, its label map, and the receiver's images at
PSNR 100, 10 and 1 dB, through exactly the services' stages (``gesco.link``).

    python scripts/readme_figure.py [--checkpoint PATH] [--scene 0] [--out docs/images/result_example.png]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from gesco.data.synthetic import generate_scene, split_seed
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator
from gesco.diffusion.samplers import DEFAULT_SAMPLER, DEFAULT_STEPS
from gesco.link import TransmitSettings, apply_channel, colour_labels, encode_image_frame, received_conditioning


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--scene", type=int, default=0, help="index in the test split")
    ap.add_argument("--psnr", type=float, nargs="+", default=[100.0, 10.0, 1.0])
    ap.add_argument("--sampler", default=DEFAULT_SAMPLER)
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--scale", type=int, default=2, help="nearest upscaling of the figure")
    ap.add_argument("--out", default="docs/images/result_example.png")
    args = ap.parse_args()

    gen = SemanticGenerator.load(args.checkpoint, device="cpu")
    h, w = gen.resolution
    scene = generate_scene(split_seed("test", args.scene), h, w)
    tiles = [scene.image, colour_labels(scene.label, gen.space)]
    for psnr in args.psnr:
        t = TransmitSettings(psnr_db=psnr, sampler=args.sampler, steps=args.steps, guidance_scale=args.guidance, seed=args.scene)
        frame, _ = encode_image_frame(
            scene.image, scene.label, scene.instance, space=gen.space, resolution=(h, w), frame_id=f"readme-{psnr:g}", transmit=t
        )
        cond = received_conditioning(apply_channel(frame))
        settings = SamplingSettings(sampler=args.sampler, steps=args.steps, guidance_scale=args.guidance, seed=args.scene)
        img = gen.generate(cond[None], settings)
        tiles.append(SemanticGenerator.to_uint8(img)[0])
    gap = np.full((h, 2, 3), 255, np.uint8)
    row = np.concatenate([x for tile in tiles for x in (tile, gap)][:-1], axis=1)
    row = cv2.resize(row, None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(args.out, cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
    print(args.out)


if __name__ == "__main__":
    main()
