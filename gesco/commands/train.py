"""``gesco train {diffusion,distill,segmenter}``: train from a config file plus overrides.

The trainers import torch; they are imported by the handlers, not here, so that building
the parser (``gesco --help``) stays fast.
"""

from __future__ import annotations

import argparse

from gesco.config import add_config_arguments, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the diffusion model or the segmenter")
    tsub = p.add_subparsers(dest="what", metavar="MODEL", required=True)
    d = tsub.add_parser("diffusion", help="train the semantic diffusion model (runs under torchrun for DDP)")
    add_config_arguments(d, "--set steps=200 --set noisy.enabled=false")
    d.set_defaults(handler=_train_diffusion)
    ds = tsub.add_parser("distill", help="distil a guided diffusion checkpoint into a few-step student "
                                         "(progressive distillation, guidance folded in; docs/distillation.md)")
    add_config_arguments(ds, "--set teacher=checkpoints/diffusion-synthetic-64x128 --set rounds=3")
    ds.set_defaults(handler=_train_distill)
    sg = tsub.add_parser("segmenter", help="train the segmenter (sender default and mIoU evaluator)")
    add_config_arguments(sg, "--set steps=200 --set augment.blur_p=0")
    sg.set_defaults(handler=_train_segmenter)


def _train_diffusion(args: argparse.Namespace) -> int:
    from gesco.train.diffusion import DiffusionTrainConfig, train_diffusion

    config = config_from_args(args, DiffusionTrainConfig, "training")
    result = train_diffusion(config, resume=not args.no_resume, progress=not args.no_progress)
    print(f"checkpoint: {result.checkpoint} (step {result.steps})")
    return 0


def _train_segmenter(args: argparse.Namespace) -> int:
    from gesco.segment.train import run_cli

    return run_cli(args)


def _train_distill(args: argparse.Namespace) -> int:
    from gesco.diffusion.samplers import GUIDANCE_ONLY_SAMPLERS
    from gesco.train.distill import DistillConfig, guidance_only, train_distill

    config = config_from_args(args, DistillConfig, "distillation")
    result = train_distill(config, resume=not args.no_resume, progress=not args.no_progress)
    if guidance_only(config):
        print(f"checkpoint: {result.checkpoint} (guidance-only student, guidance {config.guidance_scale:g} folded in; "
              f"sample with --sampler {' / '.join(GUIDANCE_ONLY_SAMPLERS)} at any step count)")
    else:
        print(f"checkpoint: {result.checkpoint} ({result.steps} steps; sample with --sampler distilled --steps {result.steps})")
    return 0
