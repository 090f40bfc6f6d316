"""Evaluation: the paper's tables for GESCO and its baselines, on the synthetic test scenes.

* :mod:`gesco.evaluate.metrics` - LPIPS, SSIM, Frechet distance (FID / a named substitute), mIoU;
* :mod:`gesco.evaluate.methods` - the rows (our method, the Table 5 ablations, the full-image
  baseline, the real images) and the checkpoints they need;
* :mod:`gesco.evaluate.config` - :class:`EvalConfig`, what a run evaluates (the CLI's flags);
* :mod:`gesco.evaluate.plan` - each row's checkpoint, sampler and cost;
* :mod:`gesco.evaluate.rows`, :mod:`gesco.evaluate.digital_rows` - one batch of a row through the
  services' own stages (analog) or the digital link;
* :mod:`gesco.evaluate.scoring` - the per-image metrics;
* :mod:`gesco.evaluate.runner` - the loop over rows, PSNRs and scenes, resumable;
* :mod:`gesco.evaluate.report` - tables (markdown, CSV, JSON), plots, sample grids;
* :mod:`gesco.evaluate.sampler_study` - quality against network evaluations per sampler.

Command line: ``gesco evaluate`` (see ``docs/evaluation.md``). The names below are
imported on first use, so ``import gesco.evaluate.metrics`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CHECKPOINT_ROLES": "gesco.evaluate.methods",
    "DEFAULT_METHODS": "gesco.evaluate.methods",
    "METHODS": "gesco.evaluate.methods",
    "Method": "gesco.evaluate.methods",
    "EvalConfig": "gesco.evaluate.config",
    "EvaluationOutcome": "gesco.evaluate.runner",
    "run_evaluation": "gesco.evaluate.runner",
    "run_sampler_study": "gesco.evaluate.sampler_study",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gesco.evaluate' has no attribute {name!r}")
