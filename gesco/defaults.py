"""Default values shared by the command line and the libraries, in a module without torch.

``gesco --help`` builds every sub-command's parser; the parsers show these defaults, so
they live here rather than in :mod:`gesco.diffusion.samplers` or :mod:`gesco.channel`
(both import torch, which takes seconds). Those modules re-export the names below, so
there is still one definition of each.
"""

from __future__ import annotations

#: Samplers of an ordinary epsilon-predicting checkpoint (:mod:`gesco.diffusion.samplers`).
SAMPLERS: tuple[str, ...] = ("ancestral", "respaced", "ddim", "dpmpp-2m", "dpmpp-2m-sde", "dpmpp-2m-sde-ode-mean")

#: The default sampler and step count of the receiver, the CLI and the evaluation, chosen
#: by the sampler studies. On the 2,400-step CPU checkpoint (docs/evaluation/samplers/README.md)
#: the respaced ancestral sampler at 50 steps was the cheapest to match the 1000-step reference.
#: On the shipped mean-path checkpoint the deterministic solvers (DDIM, DPM-Solver++(2M)) keep
#: the layout but leave grain (Frechet distance 1.6x; docs/evaluation/samplers-mean-path/), while
#: the stochastic SDE-DPM-Solver++(2M) at 20 steps beats respaced-50 on every score but the mean
#: colour (+1.3 / 255) at 0.4x the network evaluations (docs/evaluation/samplers-sde/README.md).
#: Re-run the study when the checkpoint changes. The guidance-distilled student
#: (checkpoints/diffusion-synthetic-64x128-student) meets the few-step target with
#: dpmpp-2m-sde-ode-mean at 8 steps but is not the default (docs/distillation.md, "Verdict").
DEFAULT_SAMPLER = "dpmpp-2m-sde"
DEFAULT_STEPS = 20

#: The range of sampling step counts every entry point accepts (a checkpoint with fewer time
#: steps lowers the upper end: the receiver refuses more steps than the model's ``T``).
STEPS_RANGE: tuple[int, int] = (1, 1000)

#: Classifier-free guidance scale ``s`` of ``eps_0 + s (eps_y - eps_0)`` (1 = no guidance): the
#: authors' code uses 2 for Cityscapes (docs/authors-code.md); the receiver, the CLI, the
#: evaluation and distillation default to it.
DEFAULT_GUIDANCE = 2.0
#: The range of guidance scales every entry point accepts.
GUIDANCE_RANGE: tuple[float, float] = (0.0, 20.0)

#: PSNR values (dB) of the paper's experiments (Tables 1-5).
PAPER_PSNRS_DB: tuple[float, ...] = (1.0, 5.0, 10.0, 15.0, 20.0, 30.0, 100.0)
