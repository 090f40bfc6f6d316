"""``gesco train {diffusion,segmenter}``: train from a config file plus overrides."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the diffusion model or the segmenter")
    tsub = p.add_subparsers(dest="what", metavar="MODEL", required=True)
    d = tsub.add_parser("diffusion", help="train the semantic diffusion model (runs under torchrun for DDP)")
    d.add_argument("--config", help="YAML/JSON config (see configs/)")
    d.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set steps=200 --set noisy.enabled=false")
    d.add_argument("--no-resume", action="store_true", help="start over even if the output folder holds a state")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(handler=_train_diffusion)
    try:
        from gesco.segment.train import register_cli as register_segmenter
    except ModuleNotFoundError:
        register_segmenter = None
    if register_segmenter is not None:
        register_segmenter(tsub)


def _train_diffusion(args: argparse.Namespace) -> int:
    from gesco.config import apply_overrides, load_config_file
    from gesco.train.diffusion import DiffusionTrainConfig, train_diffusion

    raw = apply_overrides(load_config_file(args.config), args.overrides)
    try:
        config = DiffusionTrainConfig.from_dict(raw)
    except (TypeError, ValueError) as e:
        from gesco.errors import GescoInputError

        raise GescoInputError(f"bad training config: {e}") from None
    result = train_diffusion(config, resume=not args.no_resume, progress=not args.no_progress)
    print(f"checkpoint: {result.checkpoint} (step {result.steps})")
    return 0
