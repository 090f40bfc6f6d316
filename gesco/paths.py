"""Where gesco finds its shipped files.

The shipped checkpoints live in the repository's ``checkpoints/`` folder, next to the
``gesco`` package. ``GESCO_CHECKPOINT_DIR`` overrides the folder (e.g. in a container
or for a user's own models).
"""

from __future__ import annotations

import os
from pathlib import Path

#: stem of the shipped semantic diffusion checkpoint (noisy training + FDS): the guided model
#: the paper describes, the evaluation's ``ours`` and the teacher of the student below
DEFAULT_DIFFUSION = "diffusion-synthetic-64x128"
#: stem of the receiver's default checkpoint: the guidance-distilled student of
#: :data:`DEFAULT_DIFFUSION` (guidance 2 folded in, one pass per step; docs/distillation.md),
#: sampled by default with :data:`gesco.defaults.DEFAULT_SAMPLER` at
#: :data:`gesco.defaults.DEFAULT_STEPS` steps
DEFAULT_RECEIVER = f"{DEFAULT_DIFFUSION}-student"
#: stem of the shipped segmenter checkpoint
DEFAULT_SEGMENTER = "segmenter-synthetic-64x128"


def default_checkpoint_dir() -> Path:
    """``$GESCO_CHECKPOINT_DIR`` or the repository's ``checkpoints/`` folder."""
    env = os.environ.get("GESCO_CHECKPOINT_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "checkpoints"


def shipped_checkpoint(stem: str) -> Path:
    """Path stem of a shipped checkpoint (without suffix)."""
    return default_checkpoint_dir() / stem
