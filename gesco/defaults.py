"""Default values shared by the command line and the libraries, in a module without torch.

``gesco --help`` builds every sub-command's parser; the parsers show these defaults, so
they live here rather than in :mod:`gesco.diffusion.samplers` or :mod:`gesco.channel`
(both import torch, which takes seconds). Those modules re-export the names below, so
there is still one definition of each.
"""

from __future__ import annotations

#: Samplers of an ordinary epsilon-predicting checkpoint, derived from the sampler registry's
#: specs (:mod:`gesco.sampler_specs`, torch-free like this module).
from gesco.sampler_specs import SAMPLERS  # noqa: F401 - re-exported

#: The receiver's default sampler and step count (the sender's form, ``gesco send``, the
#: viewer, ``SamplingSettings()``), paired with the receiver's default checkpoint, the
#: guidance-distilled student (:data:`gesco.paths.DEFAULT_RECEIVER`, guidance 2 folded in, one
#: network pass per step; its mean path fitted on received maps). With this sampler at 8 steps it meets issue 15's few-step target
#: against the 1000-step reference (mIoU +0.010, Frechet distance 1.09x, 8 passes per image;
#: docs/evaluation/samplers-distill/) and the 100-scene targets (docs/evaluation/student8/), at
#: 0.18x the sampling time of the guided model's SDE-20 (bench/results/student.json). The
#: ``dpmpp-2m-sde-ode-mean`` sampler runs on an ordinary guided checkpoint too (2 passes per
#: step), but 8 steps are tuned for the student: use :data:`GUIDED_SAMPLER` / :data:`GUIDED_STEPS`
#: there. Re-run the sampler study when a checkpoint changes (docs/distillation.md, "Verdict").
DEFAULT_SAMPLER = "dpmpp-2m-sde-ode-mean"
DEFAULT_STEPS = 8

#: The sampler and step count of an ordinary guided checkpoint (two passes per step), the
#: default of ``gesco evaluate``: the paper's tables evaluate the guided model and its
#: training ablations at one setting. On the 2,400-step CPU checkpoint the respaced ancestral
#: sampler at 50 steps was the cheapest to match the 1000-step reference
#: (docs/evaluation/samplers/README.md); on the shipped mean-path checkpoint the deterministic
#: solvers keep the layout but leave grain (Frechet distance 1.6x;
#: docs/evaluation/samplers-mean-path/), while SDE-DPM-Solver++(2M) at 20 steps beats
#: respaced-50 on every score but the mean colour (+1.3 / 255) at 0.4x the network evaluations
#: (docs/evaluation/samplers-sde/README.md). It was the receiver's default before the student.
GUIDED_SAMPLER = "dpmpp-2m-sde"
GUIDED_STEPS = 20

#: The range of sampling step counts every entry point accepts (a checkpoint with fewer time
#: steps lowers the upper end: the receiver refuses more steps than the model's ``T``).
STEPS_RANGE: tuple[int, int] = (1, 1000)

#: Classifier-free guidance scale ``s`` of ``eps_0 + s (eps_y - eps_0)`` (1 = no guidance): the
#: authors' code uses 2 for Cityscapes (docs/authors-code.md); the receiver, the CLI, the
#: evaluation and distillation default to it.
DEFAULT_GUIDANCE = 2.0
#: The range of guidance scales every entry point accepts.
GUIDANCE_RANGE: tuple[float, float] = (0.0, 20.0)

#: The *mean temperature* ``tau`` of the starting noise (:func:`gesco.diffusion.samplers.scale_start_mean`):
#: ``x_T`` keeps its zero-mean part and its per-channel spatial mean is multiplied by ``tau``.
#: ``1`` is the paper's sampling (``x_T ~ N(0, I)`` unchanged), the default of
#: ``SamplingSettings`` and of a checkpoint whose card recommends none; ``0`` starts every image
#: from a zero-mean noise. Issue 24 item 3, docs/colour/README.md section 6.2.
DEFAULT_MEAN_TEMPERATURE = 1.0
#: The range of mean temperatures every entry point accepts (inclusive).
MEAN_TEMPERATURE_RANGE: tuple[float, float] = (0.0, 1.0)

#: The lossless map codecs by registry name (:data:`gesco.codecs.lossless.LOSSLESS_CODECS`, checked
#: equal by ``tests/codecs``) and the sender's default: the one with the fewest bits on the
#: validation scenes at 64x128 and 256x512 (``bench/bench_codecs.py``, ``docs/bit_budget.md``),
#: also the downsample codec's default inner codec.
LOSSLESS_CODEC_NAMES: tuple[str, ...] = ("raw", "zlib", "lzma", "contour", "context")
DEFAULT_CODEC = "context"

#: PSNR values (dB) of the paper's experiments (Tables 1-5).
PAPER_PSNRS_DB: tuple[float, ...] = (1.0, 5.0, 10.0, 15.0, 20.0, 30.0, 100.0)

#: the appearance side channel (gesco.appearance): bits per colour component the quantiser
#: accepts, and times each bit may be repeated on the channel; torch-free here so that the
#: wire's bounds (gesco.wire.bounds) and the model share them without the wire importing the model
APPEARANCE_BIT_DEPTH_RANGE: tuple[int, int] = (1, 8)
#: its modes: ``"off"`` (the paper's setting, the default), ``"mean"`` (the image's mean RGB) or
#: ``"classes"`` (every present class's mean RGB); declared here for the transmission settings
APPEARANCE_MODES: tuple[str, ...] = ("off", "mean", "classes")
APPEARANCE_REPEAT_RANGE: tuple[int, int] = (1, 16)
#: the value of the ``appearance_repeat`` setting that lets the sender choose the repetition
#: itself from the transmission's PSNR and channel (gesco.appearance.choose_repeat); the default
APPEARANCE_REPEAT_AUTO = 0
#: the residual bit-error rate per information bit, after averaging the ``r`` copies, that the
#: automatic repetition aims for (at 1 dB on AWGN the 50 validation scenes kept their 100 dB
#: colours with 0.0011 wrong bits per bit, and lost half of it with 0.014: docs/colour/appearance.md)
APPEARANCE_TARGET_BIT_ERROR_RATE = 1e-3
