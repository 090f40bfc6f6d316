"""The receiver's model: loading the diffusion pipeline and turning job settings into its settings.

The receiver only needs what :class:`gesco.diffusion.pipeline.SemanticGenerator` offers
(:class:`Generator` below); tests pass a small real checkpoint. There is no fallback to
random weights: a missing checkpoint stops the receiver with
:class:`gesco.errors.CheckpointError` naming the file and the command that makes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from gesco.diffusion.samplers import DISTILLED_SAMPLERS
from gesco.errors import GescoInputError
from gesco.link import TransmitSettings
from gesco.semantics.classes import ClassSpace
from gesco.transmit_fields import model_defaults


class Generator(Protocol):
    """What the receiver uses of ``SemanticGenerator``."""

    card: Any
    space: ClassSpace
    resolution: tuple[int, int]
    device: torch.device

    def generate(self, cond: torch.Tensor, settings: Any, progress: Any = None) -> torch.Tensor:
        """``(B, C + 1, H, W)`` conditioning, per-sample settings -> ``(B, 3, H, W)`` in [-1, 1];
        ``progress(done, total)`` after each network evaluation."""
        ...

    @staticmethod
    def to_uint8(images: torch.Tensor) -> np.ndarray:
        """``(B, 3, H, W)`` in [-1, 1] -> ``(B, H, W, 3)`` uint8."""
        ...


def load_generator(checkpoint: str | Path | None, device: str = "auto", sky_finishing_sigma: float = 0.0,
                   mean_temperature: float | None = None) -> Generator:
    """Load the diffusion checkpoint (``None``: the shipped one) on ``device``, with the sky finishing
    of :func:`gesco.diffusion.finishing.sky_finishing` (``0``: off) and the mean temperature of every
    job (``None``: the card's recommendation, else 1; :func:`gesco.diffusion.samplers.scale_start_mean`).

    Raises:
        CheckpointError: missing, corrupt or mismatched checkpoint (the message names the
            file and the training command).
    """
    from gesco.diffusion.finishing import sky_finishing
    from gesco.diffusion.pipeline import SemanticGenerator

    return SemanticGenerator.load(checkpoint, device=device, finishing=sky_finishing(sky_finishing_sigma),
                                  mean_temperature=mean_temperature)


def mean_temperature(generator: Generator) -> float:
    """The mean temperature ``generator`` samples every job with (1, the paper's sampling, for a
    generator that has none, e.g. a test double)."""
    return float(getattr(generator, "mean_temperature", 1.0))


def sampling_settings(settings: TransmitSettings) -> Any:
    """A job's :class:`TransmitSettings` -> the pipeline's ``SamplingSettings``."""
    return settings.to_sampling()


def check_sampling(settings: TransmitSettings, num_timesteps: int, generator: Generator | None = None) -> None:
    """Refuse sampling settings the pipeline cannot run (unknown sampler, bad steps or scale),
    and, when ``generator`` can say so (``check_settings``), settings its checkpoint cannot run
    (e.g. the respaced sampler or another guidance scale on a distilled student).

    Raises:
        GescoInputError: with a message naming the bad setting.
    """
    sampling = sampling_settings(settings)
    sampling.validate()
    if settings.sampler != "ancestral" and settings.steps > num_timesteps:
        raise GescoInputError(f"steps must be at most the model's {num_timesteps} time steps, got {settings.steps}")
    check = getattr(generator, "check_settings", None)
    if check is not None:
        check(sampling)


def num_timesteps(generator: Generator) -> int:
    """``T`` of the generator's diffusion (1000 when the card does not say)."""
    try:
        return int(generator.card.diffusion.num_timesteps)
    except AttributeError:
        return 1000


def model_key(generator: Generator) -> str:
    """Identity of the model a job is checked against and sampled with: class space,
    resolution and a SHA-256 of the model card and weights, e.g. ``cityscapes-64x128-1f2e3d4c5b6a``.

    The ingest stores it with each job and a worker claims only jobs of its own key
    (:meth:`receiver.store.BaseJobStore.claim_batch`): a worker with another checkpoint, or one
    of another resolution, leaves the job for a worker that has the right one. A label-aware
    finishing that is on (:mod:`gesco.diffusion.finishing`) changes the images, so it is part of
    the key, as is a mean temperature other than 1 (:func:`mean_temperature`); off and 1, the key is
    the checkpoint's alone (as before either existed).
    """
    h, w = generator.resolution
    digest = hashlib.sha256()
    card = getattr(generator, "card", None)
    to_dict = getattr(card, "to_dict", None)
    digest.update(json.dumps(to_dict() if to_dict else repr(card), sort_keys=True, default=str).encode())
    finishing = getattr(generator, "finishing", None)
    if finishing is not None and finishing.classes:
        digest.update(json.dumps({"finishing": dataclasses.asdict(finishing)}, sort_keys=True).encode())
    tau = mean_temperature(generator)
    if tau != 1.0:
        digest.update(json.dumps({"mean_temperature": tau}).encode())
    model = getattr(generator, "model", None)
    if model is not None:
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"{generator.space.name}-{h}x{w}-{digest.hexdigest()[:12]}"


def describe(generator: Generator) -> dict[str, Any]:
    """What ``/healthz`` reports about the model: class space, resolution, device, training
    steps, the mean temperature of its sampling, the finishing when one is on and, for a distilled
    student, the guidance scale folded in and the samplers it runs."""
    info: dict[str, Any] = {
        "class_space": generator.space.name,
        "resolution": list(generator.resolution),
        "device": str(generator.device),
        "training_steps": (getattr(generator.card, "training", {}) or {}).get("steps"),
        # what a transmission that leaves sampler / steps / guidance unset gets (gesco.transmit_fields)
        "default_sampling": model_defaults(getattr(generator, "card", None)),
        "mean_temperature": mean_temperature(generator),  # gesco.diffusion.samplers.scale_start_mean
    }
    finishing = getattr(generator, "finishing", None)
    if finishing is not None and finishing.classes:  # the label-aware finishing (gesco.diffusion.finishing)
        info["finishing"] = {"classes": list(finishing.classes), "sigma": finishing.sigma, "alpha": finishing.alpha}
    distilled = getattr(generator.card, "distilled", None)
    if distilled:
        info["distilled"] = {"guidance_scale": distilled.get("guidance_scale"),
                             "samplers": distilled.get("samplers") or list(DISTILLED_SAMPLERS),
                             "steps": None if distilled.get("samplers") else distilled.get("steps")}
    return info
