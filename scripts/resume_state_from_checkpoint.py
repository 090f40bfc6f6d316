"""A resumable training state from an EMA checkpoint whose own state is gone.

``gesco train diffusion`` resumes from ``<out_dir>/state.{safetensors,json}`` (weights, EMA,
AdamW moments, step and wall-time counters); that state is not committed (76 MB), so a
later session that wants to continue a committed checkpoint's run has only the checkpoint.
This script rebuilds a state from it, the same way a warm start does
(:func:`gesco.train.diffusion.warm_start`):

* model and EMA: the checkpoint's (EMA) weights;
* AdamW: fresh moments (the checkpoint does not keep them), built by the config's optimiser
  over its ``trainable`` parameters, as the trainer builds it;
* step and wall time: the checkpoint card's ``training.steps`` and ``training.wall_time_s``;
  the EMA's warm-up counter: the same step count.

Then the trainer, pointed at ``OUT_DIR`` with the checkpoint's own recipe and a larger
``steps``, resumes at that step: its learning rate is the cosine schedule's value at that
step of the longer run (a warm restart, as when a run is resumed with ``--set steps=N``) and
its data order is the same (a pure function of the step). Used for Table 5's clean arm
(docs/evaluation/table5/README.md):

    python scripts/resume_state_from_checkpoint.py checkpoints/diffusion-synthetic-64x128-clean \\
        --out-dir runs/t5-clean
    OMP_NUM_THREADS=1 gesco train diffusion --config configs/diffusion_synthetic_64x128.yaml \\
        --set noisy.enabled=false --set steps=2400 --set threads=1 --set run.out_dir=runs/t5-clean --no-progress
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gesco.diffusion.checkpoint import read_card
from gesco.diffusion.unet import SpadeUNet
from gesco.train.diffusion import DiffusionTrainConfig, trainable_parameters, warm_start
from gesco.train.utils import EMA, save_training_state


def make_state(checkpoint: str, out_dir: Path, force: bool = False) -> dict:
    """Write ``out_dir/state.{safetensors,json}`` from ``checkpoint``; return the state's metadata.

    Raises:
        ValueError: ``out_dir`` already holds a state (a real one would be lost; ``force``
            overwrites it), or the checkpoint's card has no training record to rebuild from.
    """
    state = out_dir / "state"
    if state.with_suffix(".json").exists() and not force:
        raise ValueError(f"{state}.json exists: a run's own state is better than a rebuilt one (--force overwrites it)")
    card = read_card(checkpoint)
    training = card.training
    if "config" not in training or "steps" not in training:
        raise ValueError(f"{checkpoint}: the card has no training.config / training.steps to rebuild a state from")
    config = DiffusionTrainConfig.from_dict({**training["config"], "init_from": checkpoint})
    torch.manual_seed(config.run.seed)
    model = SpadeUNet(config.unet)
    ema = EMA(model, config.optim.ema_decay)
    opt = config.optim.optimizer(trainable_parameters(model, config.trainable))
    warm_start(model, ema, config, torch.device("cpu"))  # model and EMA = the checkpoint's weights
    meta = {"step": int(training["steps"]), "wall_time_s": float(training.get("wall_time_s", 0.0)),
            "rebuilt_from_checkpoint": str(checkpoint), "adamw_moments": "fresh"}
    save_training_state(state, model, ema, opt, meta)
    return {**meta, "ema_updates": ema.num_updates}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="the EMA checkpoint (stem or one of its files) whose run to continue")
    ap.add_argument("--out-dir", required=True, type=Path, help="the run's out_dir (run.out_dir of the resuming command)")
    ap.add_argument("--force", action="store_true", help="overwrite a state already in --out-dir")
    args = ap.parse_args(argv)
    try:
        meta = make_state(args.checkpoint, args.out_dir, args.force)
    except ValueError as e:
        ap.error(str(e))
    print(f"state at step {meta['step']} (wall {meta['wall_time_s']} s, EMA counter {meta['ema_updates']}, "
          f"fresh AdamW moments) in {args.out_dir / 'state'}.{{safetensors,json}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
