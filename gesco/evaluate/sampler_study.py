"""The sampler study: mIoU and LPIPS against the number of network evaluations.

Rows: the paper's 1000-step ancestral sampler (the reference) and the respaced
ancestral sampler, DDIM (``eta = 0``) and DPM-Solver++(2M) at 10, 20 and 50 steps, all
sampling "our method" (checkpoint role ``ours``, FDS at the receiver) on the same scenes
with the same seeds; ``student-<sampler>`` rows run that sampler on the guidance-only
distilled student (role ``student``, one network pass per step instead of two), and
``unguided-<sampler>`` rows that sampler on ``ours`` without guidance (the same cost), through the same stages as the channel study
(:func:`gesco.evaluate.runner.run_evaluation`). The report picks the default sampler with
:func:`gesco.evaluate.report.sampler_choice`.
"""

from __future__ import annotations

from dataclasses import replace

from gesco.diffusion.samplers import GUIDANCE_ONLY_SAMPLERS, SAMPLERS
from gesco.errors import GescoInputError
from gesco.evaluate.config import EvalConfig
from gesco.evaluate.methods import METHODS, Method
from gesco.evaluate.runner import EvaluationOutcome, run_evaluation
from gesco.evaluate.scoring import SegmenterLike
from gesco.sampler_specs import FEW_STEP_SAMPLERS

#: the step counts of the study's few-step samplers (by default :data:`gesco.sampler_specs.FEW_STEP_SAMPLERS`,
#: read from the registry)
STUDY_STEPS: tuple[int, ...] = (10, 20, 50)
#: the study's default PSNRs: the noiseless channel and the paper's ablation PSNR
STUDY_PSNRS: tuple[float, ...] = (100.0, 10.0)
STUDY_SCENES = 20
#: ``student-<sampler>`` in the study's sampler list: that sampler running the guidance-only
#: distilled student (checkpoint role ``student``, one pass per step) instead of ``ours``
STUDENT_PREFIX = "student-"
STUDENT_SAMPLERS: tuple[str, ...] = tuple(STUDENT_PREFIX + s for s in GUIDANCE_ONLY_SAMPLERS)
#: ``unguided-<sampler>``: that sampler on ``ours`` without guidance (scale 1, one pass per step),
#: the baseline a student must beat at the same cost
UNGUIDED_PREFIX = "unguided-"
UNGUIDED_SAMPLERS: tuple[str, ...] = tuple(UNGUIDED_PREFIX + s for s in SAMPLERS if s != "ancestral")


def sampler_rows(samplers: tuple[str, ...] = FEW_STEP_SAMPLERS, steps: tuple[int, ...] = STUDY_STEPS,
                 reference: bool = True) -> list[Method]:
    """The study's rows (the real row first: the Frechet distance needs it)."""
    known = {s for s in SAMPLERS if s != "ancestral"} | set(STUDENT_SAMPLERS) | set(UNGUIDED_SAMPLERS)
    unknown = [s for s in samplers if s not in known]
    if unknown:
        raise GescoInputError(f"unknown few-step samplers {unknown}; known: {', '.join(FEW_STEP_SAMPLERS)}; "
                              f"without guidance {', '.join(UNGUIDED_SAMPLERS)}; "
                              f"on the distilled student {', '.join(STUDENT_SAMPLERS)}")
    if any(int(s) < 1 for s in steps):
        raise GescoInputError(f"step counts must be >= 1, got {list(steps)}")
    ours = METHODS["ours"]
    rows = [METHODS["real"]]
    if reference:
        rows.append(replace(ours, key="ancestral-1000", label="ancestral, full chain (reference)",
                            sampler="ancestral", steps=1000, table5=False))
    for name in samplers:
        student, unguided = name.startswith(STUDENT_PREFIX), name.startswith(UNGUIDED_PREFIX)
        sampler = name.removeprefix(STUDENT_PREFIX).removeprefix(UNGUIDED_PREFIX)
        note = " (distilled student)" if student else " (no guidance)" if unguided else ""
        for n in steps:
            rows.append(replace(ours, key=f"{name}-{int(n)}", label=f"{sampler}, {int(n)} steps{note}",
                                checkpoint="student" if student else ours.checkpoint, sampler=sampler,
                                steps=int(n), table5=False, guidance_scale=1.0 if unguided else None))
    return rows


def run_sampler_study(config: EvalConfig, rows: list[Method] | None = None, *,
                      segmenter: SegmenterLike | None = None) -> EvaluationOutcome:
    """Run the study into ``config.out`` (resumable like the channel study) and write its report."""
    rows = rows if rows is not None else sampler_rows()
    return run_evaluation(config, rows, study="samplers", segmenter=segmenter, shown=[r.key for r in rows])
