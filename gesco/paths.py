"""Where gesco finds its shipped files and keeps what it makes.

The shipped checkpoints live in the repository's ``checkpoints/`` folder, next to the
``gesco`` package. ``GESCO_CHECKPOINT_DIR`` overrides the folder (e.g. in a container
or for a user's own models).

What the command line makes (``gesco up``'s job store and bit-budget log, ``gesco send``'s
images) goes to one data folder outside the checkout, :func:`default_data_dir`, where
``gesco budget`` finds the log without being told.
"""

from __future__ import annotations

import os
from pathlib import Path

#: stem of the shipped semantic diffusion checkpoint (noisy training + FDS): the guided model
#: the paper describes, the evaluation's ``ours`` and the teacher of the student below
DEFAULT_DIFFUSION = "diffusion-synthetic-64x128"
#: stem of the guidance-distilled student of :data:`DEFAULT_DIFFUSION` (guidance 2 folded in,
#: one pass per step; docs/distillation.md)
DEFAULT_STUDENT = f"{DEFAULT_DIFFUSION}-student"
#: stem of the receiver's default checkpoint: :data:`DEFAULT_STUDENT` with its mean-colour path
#: set to the Bayes-optimal one for the maps the receiver reads (``scripts/mean_path_fit.py
#: --maps received``; issue 24 item 3, docs/colour/README.md section 6.4), sampled by default
#: with :data:`gesco.defaults.DEFAULT_SAMPLER` at :data:`gesco.defaults.DEFAULT_STEPS` steps and
#: the mean temperature its card recommends (0.5)
DEFAULT_RECEIVER = f"{DEFAULT_STUDENT}-meanfit"
#: stem of the shipped segmenter checkpoint
DEFAULT_SEGMENTER = "segmenter-synthetic-64x128"
#: environment variable that names the data folder of ``gesco up`` / ``send`` / ``budget``
DATA_DIR_ENV = "GESCO_DATA_DIR"
#: file name of the bit-budget log in the data folder
BUDGET_LOG_NAME = "budget.jsonl"


def default_checkpoint_dir() -> Path:
    """``$GESCO_CHECKPOINT_DIR`` or the repository's ``checkpoints/`` folder."""
    env = os.environ.get("GESCO_CHECKPOINT_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "checkpoints"


def default_data_dir() -> Path:
    """``$GESCO_DATA_DIR``, else ``$XDG_DATA_HOME/gesco``, else ``~/.local/share/gesco``.

    The command line's data folder: ``gesco up`` keeps the job store and the bit-budget log
    there, ``gesco send`` saves results under ``results/``, ``gesco budget`` reads the log.
    It is outside the repository, so nothing a run makes lands in a checkout.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "gesco"


def shipped_checkpoint(stem: str) -> Path:
    """Path stem of a shipped checkpoint (without suffix)."""
    return default_checkpoint_dir() / stem
