"""``gesco import SRC.pt --out CHECKPOINT``: bring the authors' published weights into gesco.

Reads an SDM / GESCO ``UNetModel`` state dict (``torch.save``; the paper's
``Cityscapes_ema_0.9999_190000.pt``, SDM's ADE20K / COCO-Stuff ``ema_0.9999_*.pt``) with
``torch.load(weights_only=True)``, strips ``module.`` / ``model.`` prefixes, drops GESCO's
unused ``spade_norm`` keys, maps every other key onto gesco's ``SpadeUNet`` and writes
``CHECKPOINT.safetensors`` + ``CHECKPOINT.json`` (the model card: source name and SHA-256,
flags, class space, what the edge map must be). ``gesco up --checkpoint CHECKPOINT``, the
receiver and ``gesco evaluate --checkpoint CHECKPOINT`` load it like any other checkpoint.

The network flags default to the published ones (``--image-size 256 --num-channels 256
--num-res-blocks 2 --attention-resolutions 32,16,8 --num-head-channels 64``); pass the
authors' own flags for another model. Named after what it does to a foreign file; the
mapping is in :mod:`gesco.diffusion.authors_import` and docs/pretrained.md.
"""

from __future__ import annotations

import argparse
import sys

from gesco.diffusion.authors_flags import DATASETS, AuthorsFlags


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import the authors' SDM / GESCO weights (.pt) as a gesco checkpoint",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="the authors' checkpoint, e.g. Cityscapes_ema_0.9999_190000.pt")
    p.add_argument("--out", required=True, help="gesco checkpoint to write (stem; .safetensors and .json)")
    p.add_argument("--dataset", choices=sorted(DATASETS), default="cityscapes",
                   help="what the model was trained on: fixes the class space, edge map and aspect (default cityscapes)")
    d = AuthorsFlags()
    p.add_argument("--image-size", type=int, default=d.image_size, help="the authors' --image_size (height)")
    p.add_argument("--num-channels", type=int, default=d.num_channels)
    p.add_argument("--num-res-blocks", type=int, default=d.num_res_blocks)
    p.add_argument("--channel-mult", type=_ints, default=(), help="e.g. 1,1,2,2,4,4 (default: theirs for the size)")
    p.add_argument("--attention-resolutions", type=_ints, default=d.attention_resolutions)
    p.add_argument("--num-head-channels", type=int, default=d.num_head_channels)
    p.add_argument("--resblock-updown", type=_bool, default=d.resblock_updown)
    p.add_argument("--learn-sigma", type=_bool, default=d.learn_sigma)
    p.add_argument("--diffusion-steps", type=int, default=d.diffusion_steps)
    p.add_argument("--noise-schedule", choices=("linear", "cosine"), default=d.noise_schedule)
    p.set_defaults(handler=_import)


def _import(args: argparse.Namespace) -> int:
    from gesco.diffusion.authors_import import import_checkpoint

    flags = AuthorsFlags(image_size=args.image_size, num_channels=args.num_channels,
                         num_res_blocks=args.num_res_blocks, channel_mult=args.channel_mult,
                         attention_resolutions=args.attention_resolutions, num_head_channels=args.num_head_channels,
                         resblock_updown=args.resblock_updown, learn_sigma=args.learn_sigma,
                         diffusion_steps=args.diffusion_steps, noise_schedule=args.noise_schedule)
    path, card, report = import_checkpoint(args.source, args.out, args.dataset, flags,
                                           progress=lambda m: print(f"gesco import: {m}", file=sys.stderr))
    imp = card.training["imported"]
    print(f"wrote {path} ({report.parameters:,} parameters, {report.mapped_keys} keys mapped"
          f"{f', {report.dropped_keys} unused spade_norm keys dropped' if report.dropped_keys else ''})")
    print(f"  source {imp['source']} sha256 {imp['sha256']}; {report.variant} network, label input "
          f"{report.label_input}; class space {card.class_space}; resolution {card.resolution[0]}x{card.resolution[1]}")
    print(f"  edges: {card.conditioning['edges']}")
    rec = card.conditioning["recommended_sampling"]
    print(f"  serve it: gesco up --checkpoint {args.out}; send with --sampler {rec['sampler']} --steps {rec['steps']} "
          f"--guidance {rec['guidance_scale']:g} (the paper's chain: --sampler ancestral)")
    return 0
