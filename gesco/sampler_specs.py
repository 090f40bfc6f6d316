"""What each sampler is, in a module without torch: the registry's facts and the name lists.

:mod:`gesco.diffusion.samplers` binds each :class:`SamplerSpec` below to its function (the
registry, :data:`gesco.diffusion.samplers.REGISTRY`); everything else that needs to know about
the samplers reads it here, so a new sampler is declared once (a function in
:mod:`gesco.diffusion.samplers` and one entry of :data:`SPECS`) and every list, form, flag,
check and cost follows:

* the name lists :data:`SAMPLERS` (an ordinary guided checkpoint's), :data:`DISTILLED_SAMPLERS`
  (a progressively distilled student's), :data:`GUIDANCE_ONLY_SAMPLERS` (a guidance-only
  student's) and :data:`KNOWN_SAMPLERS` (all), which the sender's form, ``gesco send``, the
  viewer and the checkpoint cards use;
* :func:`network_evaluations`, the cost of a call.

``gesco --help`` builds every parser from :mod:`gesco.defaults`, which takes :data:`SAMPLERS`
from here: this module imports nothing heavy (a test pins that ``gesco --help`` loads no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from gesco.errors import GescoInputError

#: The time grids a sampler runs on (made by :func:`gesco.diffusion.samplers.make_grid`):
#: ``"full"`` every step of the chain (no step count); ``"uniform"`` / ``"logsnr"`` ``steps`` steps
#: evenly spaced in time / in log-SNR (:func:`gesco.diffusion.samplers.spaced_chain`; the
#: default spacing, which a ``spacing`` argument overrides); ``"distilled"`` the student's grid
#: (:func:`gesco.diffusion.samplers.distilled_timesteps`, or the ``timesteps`` its card records).
GRIDS: tuple[str, ...] = ("full", "uniform", "logsnr", "distilled")

#: How a distilled student's output is read (:func:`gesco.diffusion.samplers.prediction_to_x0`):
#: ``"v"`` (Salimans & Ho 2022), ``"x0"`` or ``"eps"``; the ``parametrisation`` option of ``"distilled"``.
PARAMETRISATIONS: tuple[str, ...] = ("v", "x0", "eps")

#: The checkpoints a sampler runs: ``"guided"`` an ordinary epsilon-predicting model (guidance
#: costs a second pass per step), ``"distilled"`` a progressively distilled student (guidance
#: folded into its weights, one pass per step, its output read in its parametrisation).
MODELS: tuple[str, ...] = ("guided", "distilled")


@dataclass(frozen=True)
class SamplerSpec:
    """One sampler: what it computes and what it needs.

    Attributes:
        name: the name users pass (``--sampler``, the REST form, :func:`~gesco.diffusion.samplers.sample`).
        function: the name of its function in :mod:`gesco.diffusion.samplers`, a pure function
            ``f(denoiser, x_T, grid, *, noise, clip, progress, **options) -> x_0``.
        bound: keyword arguments fixed for this name (``"dpmpp-2m-sde-ode-mean"`` is
            ``dpmpp_2m_sde`` with ``ode_mean=True``).
        options: keyword options the caller may set (e.g. DDIM's ``eta``).
        grid: its time grid, one of :data:`GRIDS`.
        stochastic: draws fresh noise after ``x_T`` at its default options (the seed then
            decides more than the start).
        reads_variance: uses the learned variance output ``v`` (paper Eq. 7); a model
            without it falls back to ``beta_tilde``, and a guidance-only student (which does not
            train ``v``) cannot run it.
        model: which checkpoints it samples, one of :data:`MODELS`.
        runs_guidance_only_student: it reads only epsilon, so a guidance-only student (one
            conditional pass predicting the guided epsilon at every ``t``) runs it at any step count.
        summary: one line for docs and error messages.
    """

    name: str
    function: str
    grid: str
    stochastic: bool
    reads_variance: bool
    model: str
    runs_guidance_only_student: bool
    summary: str
    bound: tuple[tuple[str, object], ...] = ()
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.grid not in GRIDS or self.model not in MODELS:
            raise ValueError(f"sampler {self.name!r}: grid {self.grid!r} / model {self.model!r} not in {GRIDS} / {MODELS}")
        if self.runs_guidance_only_student and (self.reads_variance or self.model != "guided"):
            raise ValueError(f"sampler {self.name!r}: a guidance-only student has no variance and is read as epsilon")

    @property
    def fixed_steps(self) -> bool:
        """Runs every step of the chain (``steps`` must be ``None`` or ``T``)."""
        return self.grid == "full"

    @property
    def folds_guidance(self) -> bool:
        """Its model has the guidance in its weights: one pass per step whatever the scale."""
        return self.model == "distilled"


#: Every sampler, in the order the name lists keep.
SPECS: tuple[SamplerSpec, ...] = (
    SamplerSpec("ancestral", "ancestral", grid="full", stochastic=True, reads_variance=True, model="guided",
                runs_guidance_only_student=False,
                summary="the paper's ancestral sampler over all T steps (DDPM; paper Eq. 5-7)"),
    SamplerSpec("respaced", "ancestral", grid="uniform", stochastic=True, reads_variance=True, model="guided",
                runs_guidance_only_student=False,
                summary="ancestral sampling on a respaced chain (Nichol & Dhariwal 2021)"),
    SamplerSpec("ddim", "ddim", grid="logsnr", stochastic=False, reads_variance=False, model="guided",
                runs_guidance_only_student=True, options=("eta",),
                summary="DDIM (Song et al. 2021, Eq. 12); deterministic at eta = 0"),
    SamplerSpec("dpmpp-2m", "dpmpp_2m", grid="logsnr", stochastic=False, reads_variance=False, model="guided",
                runs_guidance_only_student=True,
                summary="DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), the ODE solver"),
    SamplerSpec("dpmpp-2m-sde", "dpmpp_2m_sde", grid="logsnr", stochastic=True, reads_variance=False,
                model="guided", runs_guidance_only_student=True, options=("ode_tail",),
                summary="SDE-DPM-Solver++(2M) (Lu et al. 2022), fresh noise at every step"),
    SamplerSpec("dpmpp-2m-sde-ode-mean", "dpmpp_2m_sde", grid="logsnr", stochastic=True, reads_variance=False,
                model="guided", runs_guidance_only_student=True, bound=(("ode_mean", True),), options=("ode_tail",),
                summary="SDE-DPM-Solver++(2M) with the image's per-channel mean on the ODE step"),
    SamplerSpec("distilled", "distilled", grid="distilled", stochastic=False, reads_variance=False,
                model="distilled", runs_guidance_only_student=False, options=("parametrisation",),
                summary="deterministic DDIM over a progressively distilled student's own chain"),
)
SPEC_BY_NAME: dict[str, SamplerSpec] = {s.name: s for s in SPECS}
if len(SPEC_BY_NAME) != len(SPECS):
    raise ValueError("two samplers share a name")

#: every sampler name :func:`~gesco.diffusion.samplers.sample` and :func:`network_evaluations` accept
KNOWN_SAMPLERS: tuple[str, ...] = tuple(s.name for s in SPECS)
#: samplers of an ordinary epsilon-predicting checkpoint (a distilled one refuses them)
SAMPLERS: tuple[str, ...] = tuple(s.name for s in SPECS if s.model == "guided")
#: samplers of a progressively distilled checkpoint (``gesco train distill``): they run the student
#: whose card records ``{"distilled": {"steps", "guidance_scale", "parametrisation", ...}}`` at
#: exactly its step count, one unguided forward per step
DISTILLED_SAMPLERS: tuple[str, ...] = tuple(s.name for s in SPECS if s.model == "distilled")
DISTILLED_SAMPLER = "distilled"
#: samplers of a *guidance-only* student (``gesco train distill`` with ``parametrisation: eps,
#: rounds: 0``; its card lists them under ``"distilled"."samplers"``): those that read only epsilon
GUIDANCE_ONLY_SAMPLERS: tuple[str, ...] = tuple(s.name for s in SPECS if s.runs_guidance_only_student)


def few_step_samplers(specs: tuple[SamplerSpec, ...] = SPECS) -> tuple[str, ...]:
    """The sampler study's default samplers (:mod:`gesco.evaluate.sampler_study`), in the
    registry's order: every sampler of an ordinary guided checkpoint that takes a step count
    (not the full chain, which is the study's reference row) and is not a variant of another
    (no ``bound`` options, e.g. ``dpmpp-2m-sde-ode-mean``; ``--study-samplers`` names a variant
    to study it). A new sampler declared in :data:`SPECS` is studied on arrival."""
    return tuple(s.name for s in specs if s.model == "guided" and not s.fixed_steps and not s.bound)


#: the sampler study's default few-step samplers (:func:`few_step_samplers`)
FEW_STEP_SAMPLERS: tuple[str, ...] = few_step_samplers()


def sampler_spec(name: str) -> SamplerSpec:
    """The spec of the sampler ``name``.

    Raises:
        GescoInputError: an unknown name (the message lists the known ones).
    """
    try:
        return SPEC_BY_NAME[name]
    except (KeyError, TypeError):
        raise GescoInputError(f"unknown sampler {name!r}; known: {', '.join(KNOWN_SAMPLERS)}") from None


class NetworkEvaluations(NamedTuple):
    """Cost of one :func:`~gesco.diffusion.samplers.sample` call.

    Attributes:
        forwards: network forward calls (a guided step is one batched call of size ``2B``).
        batch_factor: images per sample in each forward (2 with guidance, else 1; always 1
            for a sampler whose model folds the guidance in, ``"distilled"``).
    """

    forwards: int
    batch_factor: int

    @property
    def passes(self) -> int:
        """Per-image network passes: ``forwards * batch_factor`` (the paper's "two passes per step")."""
        return self.forwards * self.batch_factor


def network_evaluations(sampler: str, steps: int | None, guided: bool, num_timesteps: int = 1000,
                        stop_after: int | None = None) -> NetworkEvaluations:
    """How many network forwards :func:`~gesco.diffusion.samplers.sample` makes: one per point
    of the sampler's grid (``num_timesteps`` on the ``"full"`` grid, else ``steps``), or
    ``stop_after`` when the sampler stops early (:func:`gesco.diffusion.samplers.stop_after_passes`).

    Args:
        sampler: a name of :data:`KNOWN_SAMPLERS`.
        steps: as for ``sample`` (ignored on the ``"full"`` grid).
        guided: classifier-free guidance with a scale other than 0 and 1 (batch ``2B``).
        num_timesteps: ``T`` of the full chain.
        stop_after: as for ``sample`` (``None``: the whole grid).
    Raises:
        GescoInputError: an unknown sampler, ``steps`` outside ``[1, num_timesteps]`` or
            ``stop_after`` outside ``[1, grid points]``.
    """
    spec = sampler_spec(sampler)
    if spec.fixed_steps:
        n = num_timesteps
    elif steps is None or not 1 <= steps <= num_timesteps:
        raise GescoInputError(f"steps must be an int in [1, {num_timesteps}], got {steps!r}")
    else:
        n = int(steps)
    if stop_after is not None:
        if isinstance(stop_after, bool) or not isinstance(stop_after, int) or not 1 <= stop_after <= n:
            raise GescoInputError(f"stop_after must be an int in [1, {n}], got {stop_after!r}")
        n = stop_after
    return NetworkEvaluations(forwards=n, batch_factor=2 if guided and not spec.folds_guidance else 1)
