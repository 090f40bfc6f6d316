"""Maps in, images out: the one call the receiver and the evaluation use.

:class:`SemanticGenerator` holds a trained SPADE U-Net and its diffusion settings and
turns a batch of conditionings (received maps after FDS and Pad, ``(B, C + 1, H, W)``)
into images ``(B, 3, H, W)`` in ``[-1, 1]`` with classifier-free guidance
(:mod:`gesco.diffusion.guidance`) and one of the samplers of
:mod:`gesco.diffusion.samplers`.

Reproducibility: each image has its own random generator, seeded with its
``SamplingSettings.seed``; its starting noise ``x_T`` and, for the stochastic samplers
(those whose spec says ``stochastic``: ancestral, respaced and both SDE solvers; DDIM with
``eta > 0``), every per-step noise draw come from that generator alone. A seed therefore gives
the same image whether it is sampled alone or batched with other jobs, for every sampler (up
to float rounding of batched convolutions; tests/diffusion/test_sampler_contract.py).

Distilled checkpoints (``gesco train distill``; their card has a ``"distilled"`` record)
sample only with ``sampler="distilled"`` at the recorded step count and guidance scale
(:func:`~gesco.diffusion.samplers.distilled`: one unguided forward per step, the
guidance being folded into the student); anything else raises
:class:`~gesco.diffusion.samplers.DistilledSamplerError`, as does ``"distilled"`` on an
ordinary checkpoint. The distilled sampler is deterministic, like DDIM with ``eta = 0``.
A *guidance-only* student (its record lists ``"samplers"``: made with ``parametrisation: eps,
rounds: 0``) predicts the guided epsilon in one pass at every time step; it samples with any
of the listed samplers (:data:`~gesco.diffusion.samplers.GUIDANCE_ONLY_SAMPLERS`) at any
step count, one conditional forward per step, at its folded guidance scale only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gesco.appearance import AppearanceTarget, appearance_denoiser
from gesco.defaults import DEFAULT_GUIDANCE, DEFAULT_MEAN_TEMPERATURE, GUIDANCE_RANGE, STEPS_RANGE
from gesco.devices import resolve_device
from gesco.diffusion.checkpoint import ModelCard, load_checkpoint
from gesco.diffusion.finishing import Finishing, finish, received_labels
from gesco.diffusion.gaussian import GaussianDiffusion
from gesco.diffusion.guidance import guided_denoiser
from gesco.diffusion.samplers import (
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    DISTILLED_SAMPLERS,
    SAMPLERS,
    DistilledSamplerError,
    NetworkEvaluations,
    check_mean_temperature,
    network_evaluations,
    sample,
    sampler_spec,
)
from gesco.errors import GescoInputError, ShapeError
from gesco.paths import DEFAULT_RECEIVER, shipped_checkpoint
from gesco.semantics.classes import ClassSpace, get_class_space


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample one image.

    Attributes:
        sampler: ``"dpmpp-2m-sde-ode-mean"`` (default, :data:`~gesco.diffusion.samplers.DEFAULT_SAMPLER`,
            8 steps, for the receiver's default student), ``"dpmpp-2m-sde"`` (the guided model's, 20
            steps), ``"respaced"``, ``"dpmpp-2m"``, ``"ddim"`` or ``"ancestral"`` (the paper's 1000
            steps); ``"distilled"`` for (and only for) a progressively distilled checkpoint.
        steps: network evaluations of the few-step samplers (ignored by ``"ancestral"``).
        guidance_scale: ``s`` of ``eps_0 + s (eps_y - eps_0)`` (1 = no guidance; the
            paper's Eq. 13 scale is ``s - 1``).
        seed: seed of the image's starting noise.
        eta: DDIM stochasticity.
        mean_temperature: ``tau`` in [0, 1] scaling the starting noise's per-channel spatial mean
            (:func:`~gesco.diffusion.samplers.scale_start_mean`; 1 = the paper's sampling);
            ``None`` (default): the generator's (:attr:`SemanticGenerator.mean_temperature`: the
            receiver's setting, else the checkpoint card's recommendation, else 1).
    """

    sampler: str = DEFAULT_SAMPLER
    steps: int = DEFAULT_STEPS
    guidance_scale: float = DEFAULT_GUIDANCE
    seed: int = 0
    eta: float = 0.0
    mean_temperature: float | None = None

    def validate(self) -> SamplingSettings:
        spec = sampler_spec(self.sampler)  # GescoInputError naming the known samplers
        lo, hi = STEPS_RANGE
        if not spec.fixed_steps and not lo <= int(self.steps) <= hi:
            raise GescoInputError(f"steps must be in [{lo}, {hi}], got {self.steps}")
        lo, hi = GUIDANCE_RANGE
        if not np.isfinite(self.guidance_scale) or not lo <= self.guidance_scale <= hi:
            raise GescoInputError(f"guidance scale must be in [{lo:g}, {hi:g}], got {self.guidance_scale}")
        if self.seed < 0:
            raise GescoInputError(f"seed must be >= 0, got {self.seed}")
        if self.mean_temperature is not None:
            check_mean_temperature(self.mean_temperature)  # GescoInputError naming the range
        return self

    def group_key(self) -> tuple:
        return (self.sampler, self.sampling_steps, self.guidance_scale, self.eta, self.mean_temperature)

    @property
    def sampling_steps(self) -> int | None:
        """``steps`` as :func:`~gesco.diffusion.samplers.sample` takes it: ``None`` for a sampler
        that runs every step of the chain (``"ancestral"``), whose ``steps`` is ignored."""
        return None if sampler_spec(self.sampler).fixed_steps else self.steps


def recommended_mean_temperature(card: ModelCard | None) -> float:
    """The mean temperature ``card`` recommends (``conditioning.recommended_sampling.mean_temperature``),
    else 1 (the paper's sampling).

    Raises:
        GescoInputError: the card names one outside [0, 1].
    """
    conditioning = getattr(card, "conditioning", None)
    recommended = conditioning.get("recommended_sampling") if isinstance(conditioning, dict) else None
    tau = (recommended or {}).get("mean_temperature", DEFAULT_MEAN_TEMPERATURE)
    return check_mean_temperature(tau)


def sampling_scale(card: ModelCard, guidance_scale: float) -> float:
    """The guidance scale the sampler applies with ``card``'s model: 1 (one plain conditional
    pass) for a distilled student, whose guidance is folded into its weights; else ``guidance_scale``."""
    return 1.0 if card.distilled is not None else float(guidance_scale)


def sampling_cost(card: ModelCard | None, sampler: str, steps: int | None, guidance_scale: float) -> NetworkEvaluations:
    """Network forwards and passes per image of sampling ``card``'s model with these settings
    (``None``: an ordinary guided model of 1000 time steps, e.g. a checkpoint not made yet).

    Guidance at a scale other than 0 and 1 costs two passes per forward
    (:func:`~gesco.diffusion.guidance.guided_denoiser`); a distilled student one (:func:`sampling_scale`).
    """
    scale = float(guidance_scale) if card is None else sampling_scale(card, guidance_scale)
    num_timesteps = 1000 if card is None else card.diffusion.num_timesteps
    return network_evaluations(sampler, steps, guided=scale not in (0.0, 1.0), num_timesteps=num_timesteps)


class SemanticGenerator:
    """A trained semantic diffusion model ready to sample.

    Attributes:
        model: the SPADE U-Net (eval mode).
        card: the checkpoint's :class:`ModelCard`.
        space: its class space; ``resolution``: its ``(H, W)``; ``device``.
        finishing: the label-aware finishing applied to every generated image
            (:mod:`gesco.diffusion.finishing`; default off: the sampler's images unchanged).
        mean_temperature: the ``tau`` of every image whose settings leave it ``None``: the one
            given, else the card's recommendation (:func:`recommended_mean_temperature`), else 1.
    """

    def __init__(self, model: torch.nn.Module, card: ModelCard, device: str | torch.device = "cpu",
                 finishing: Finishing | None = None, mean_temperature: float | None = None) -> None:
        self.finishing = finishing or Finishing()
        self.finishing.validate()
        self.mean_temperature = (recommended_mean_temperature(card) if mean_temperature is None
                                 else check_mean_temperature(mean_temperature))
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.card = card
        self.space: ClassSpace = get_class_space(card.class_space)
        self.resolution: tuple[int, int] = tuple(card.resolution)  # type: ignore[assignment]
        self.diffusion = GaussianDiffusion(card.diffusion)

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | torch.device = "auto",
             finishing: Finishing | None = None, mean_temperature: float | None = None) -> SemanticGenerator:
        """Load a checkpoint (default: the receiver's, :data:`~gesco.paths.DEFAULT_RECEIVER`, the
        guidance-distilled student with its fitted mean path), with ``finishing`` (default off) and ``mean_temperature``
        (default: the card's recommendation); raises CheckpointError when missing or corrupt."""
        dev = resolve_device(device)
        model, card = load_checkpoint(path or shipped_checkpoint(DEFAULT_RECEIVER), map_location=dev)
        return cls(model, card, dev, finishing, mean_temperature)

    def _check_cond(self, cond: torch.Tensor) -> None:
        want = (self.space.label_channels, *self.resolution)
        if cond.dim() != 4 or tuple(cond.shape[1:]) != want:
            raise ShapeError(f"conditioning must be (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(cond.shape)}")

    @property
    def distilled(self) -> dict | None:
        """The card's ``"distilled"`` record (``None`` for an ordinary checkpoint)."""
        return getattr(self.card, "distilled", None)

    def check_settings(self, s: SamplingSettings) -> None:
        """Refuse settings this checkpoint cannot sample (see the module docstring).

        Raises:
            DistilledSamplerError: a distilled checkpoint with another sampler, step count or
                guidance scale than it was distilled for, or ``"distilled"`` on an ordinary one.
        """
        d = self.distilled
        if d is None:
            if s.sampler in DISTILLED_SAMPLERS:
                raise DistilledSamplerError(
                    f"sampler {s.sampler!r} needs a distilled checkpoint (made by `gesco train distill`); "
                    f"this one is an ordinary guided model: use one of {', '.join(SAMPLERS)}"
                )
            return
        n, scale = int(d["steps"]), float(d["guidance_scale"])
        if "samplers" in d:  # a guidance-only student: the listed samplers at any step count
            allowed = [str(x) for x in d["samplers"]]
            if s.sampler not in allowed:
                raise DistilledSamplerError(
                    f"this checkpoint is a guidance-only student (guidance {scale:g} folded in, one pass per step); "
                    f"sampler {s.sampler!r} cannot run it: use one of {', '.join(allowed)}"
                )
            self._check_folded_scale(s, scale, f"use guidance scale {scale:g}")
            return
        fix = f"use sampler='distilled', steps={n}, guidance scale {scale:g}"
        if s.sampler not in DISTILLED_SAMPLERS:
            raise DistilledSamplerError(
                f"this checkpoint is a distilled {n}-step student (parametrisation {d['parametrisation']!r}, "
                f"guidance {scale:g} folded in); sampler {s.sampler!r} cannot run it: {fix}"
            )
        if int(s.steps) != n:
            raise DistilledSamplerError(f"this checkpoint is distilled to {n} steps, got steps={s.steps}: {fix}")
        self._check_folded_scale(s, scale, fix)

    @staticmethod
    def _check_folded_scale(s: SamplingSettings, scale: float, fix: str) -> None:
        if abs(float(s.guidance_scale) - scale) > 1e-6:
            raise DistilledSamplerError(
                f"this checkpoint has guidance scale {scale:g} folded in; it cannot sample at scale "
                f"{float(s.guidance_scale):g}: {fix} (or distil again at that scale)"
            )

    @torch.inference_mode()
    def generate(
        self,
        cond: torch.Tensor,
        settings: SamplingSettings | list[SamplingSettings] = SamplingSettings(),
        progress: Callable[[int, int], None] | None = None,
        appearance: AppearanceTarget | None = None,
    ) -> torch.Tensor:
        """Sample one image per conditioning.

        Args:
            cond: ``(B, C + 1, H, W)`` float conditioning (received maps after FDS and Pad).
            settings: one :class:`SamplingSettings` for all, or one per image; images with
                equal sampler / steps / scale share the batched network passes.
            progress: optional ``progress(step, total)`` callback per network evaluation.
            appearance: the colours of the appearance side channel (:mod:`gesco.appearance`), one
                row per image (``nan`` rows: none); every step's clean-image estimate is projected
                onto them (:func:`~gesco.appearance.appearance_denoiser`). ``None``: the paper's setting.
        Returns:
            ``(B, 3, H, W)`` float32 images in ``[-1, 1]`` on the CPU, after :attr:`finishing`.
        """
        self._check_cond(cond)
        b = cond.shape[0]
        per = list(settings) if isinstance(settings, (list, tuple)) else [settings] * b
        if len(per) != b:
            raise GescoInputError(f"{len(per)} sampling settings for {b} conditionings")
        for s in per:
            s.validate()
            self.check_settings(s)
        if appearance is not None and appearance.mean.shape[0] != b:
            raise GescoInputError(f"appearance target for {appearance.mean.shape[0]} images, {b} conditionings")
        out = torch.empty((b, self.card.unet.image_channels, *self.resolution))
        groups: dict[tuple, list[int]] = {}
        for i, s in enumerate(per):
            groups.setdefault(s.group_key(), []).append(i)
        for idx in groups.values():
            s0 = per[idx[0]]
            tau = self.mean_temperature if s0.mean_temperature is None else s0.mean_temperature
            y = cond[idx].to(self.device, torch.float32)
            # one generator per image: x_T and every later draw of image i come from its seed
            gen = [torch.Generator().manual_seed(per[i].seed) for i in idx]
            shape = (len(idx), self.card.unet.image_channels, *self.resolution)  # each sampler draws x_T from gen
            d = self.distilled
            if d is not None and "samplers" not in d:  # progressive student: its own chain, one pass per step
                if appearance is not None:
                    raise GescoInputError("the appearance side channel needs an epsilon-predicting checkpoint; "
                                          "a progressively distilled student reads its output in its own parametrisation")
                student = guided_denoiser(self.model, y, 1.0, self.card.unet.image_channels)
                imgs = sample(student, self.diffusion, shape, sampler=s0.sampler, steps=int(d["steps"]),
                              parametrisation=d["parametrisation"], timesteps=d.get("timesteps"),
                              generator=gen, device=self.device, progress=progress, mean_temperature=tau)
                out[idx] = imgs.float().cpu()
                continue
            # a guidance-only student has the guidance folded in: one plain conditional pass per step
            denoiser = guided_denoiser(self.model, y, sampling_scale(self.card, s0.guidance_scale),
                                       self.card.unet.image_channels)
            if appearance is not None:
                rows = torch.tensor(idx)
                target = AppearanceTarget(appearance.mean[rows], appearance.class_mean[rows], appearance.regions[rows])
                denoiser = appearance_denoiser(denoiser, self.diffusion, target.to(self.device))
            imgs = sample(
                denoiser,
                self.diffusion,
                shape,
                sampler=s0.sampler,
                steps=s0.sampling_steps,
                generator=gen,
                device=self.device,
                eta=s0.eta,
                progress=progress,
                mean_temperature=tau,
            )
            out[idx] = imgs.float().cpu()
        out = out.clamp(-1.0, 1.0)
        if self.finishing.classes:  # smoothing inside the received label map's regions (a convex combination: stays in range)
            out = finish(out, received_labels(cond), self.finishing)
        return out

    @staticmethod
    def to_uint8(images: torch.Tensor) -> np.ndarray:
        """``(B, 3, H, W)`` in ``[-1, 1]`` -> ``(B, H, W, 3)`` uint8 RGB."""
        x = ((images.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return x.permute(0, 2, 3, 1).cpu().numpy()

    def describe(self) -> dict:
        return {"checkpoint": self.card.to_dict(), "device": str(self.device), "mean_temperature": self.mean_temperature}
