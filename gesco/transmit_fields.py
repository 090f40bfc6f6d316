"""The settings of one transmission, defined once: defaults, valid ranges and meanings.

A transmission's settings travel through several representations: the sender's form
(pydantic, ``sender.schemas.TransmitParams``), the wire message (``TransmitParams`` in
``proto/gesco.proto``), the core's :class:`gesco.link.TransmitSettings`, the receiver's job
record (``receiver.app.JobSettings``), the ``gesco send`` and ``gesco evaluate`` flags and the
evaluation's config. Each takes its default, range and description from :data:`FIELDS`, so a
default changes in one place and every entry point validates the same range.

This module imports no torch (``gesco --help`` builds the flags from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gesco.defaults import DEFAULT_GUIDANCE, DEFAULT_SAMPLER, DEFAULT_STEPS, GUIDANCE_RANGE, SAMPLERS, STEPS_RANGE

#: range of PSNR values (dB) a transmission may request: below -20 dB the noise is 100x the
#: signal power; 100 dB is the paper's noiseless channel
PSNR_RANGE_DB: tuple[float, float] = (-20.0, 100.0)
#: range of seeds (a non-negative 64-bit integer, as on the wire)
SEED_RANGE: tuple[int, int] = (0, 2**63 - 1)


@dataclass(frozen=True)
class FieldSpec:
    """One transmission setting.

    Attributes:
        default: its value when not given.
        description: what it means (shown in the API schema and the CLI help).
        ge, le: the inclusive range of a number (``None``: unbounded).
        choices: the allowed values of a name (``None``: any; checked where the list is known).
    """

    default: Any
    description: str
    ge: float | None = None
    le: float | None = None
    choices: tuple[str, ...] | None = None

    def check(self, name: str, value: Any) -> None:
        """Raise ``ValueError`` naming the field when ``value`` is out of range or not a choice."""
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.ge is not None or self.le is not None:
            v = float(value)
            if v != v or (self.ge is not None and v < self.ge) or (self.le is not None and v > self.le):
                raise ValueError(f"{name} must be in [{self.ge:g}, {self.le:g}], got {value!r}")


FIELDS: dict[str, FieldSpec] = {
    "psnr_db": FieldSpec(
        10.0, "Channel PSNR in dB, Eq. (1): 10 log10(P / sigma^2) with P = 1 after normalisation. "
        "The paper uses 1, 5, 10, 15, 20, 30 and 100 dB.", *PSNR_RANGE_DB),
    "channel": FieldSpec("awgn", "Channel model (docs/channel.md)."),
    "sampler": FieldSpec(
        DEFAULT_SAMPLER, "Receiver's sampler: 'dpmpp-2m-sde-ode-mean' (default: SDE-DPM-Solver++(2M) with a "
        "deterministic image mean, 8 steps on the receiver's default guidance-distilled student), "
        "'dpmpp-2m-sde' (SDE-DPM-Solver++(2M); 20 steps is the guided model's setting), 'respaced' (ancestral on "
        "a respaced chain), 'dpmpp-2m' (DPM-Solver++(2M)), 'ddim', 'ancestral' (the paper's 1000 steps; 'steps' "
        "is ignored). A distilled student refuses 'respaced' and 'ancestral'.",
        choices=SAMPLERS),
    "steps": FieldSpec(DEFAULT_STEPS, "Sampling steps (network evaluations).", *STEPS_RANGE),
    "guidance_scale": FieldSpec(
        DEFAULT_GUIDANCE, "Classifier-free guidance scale s (paper Eq. 13 with s = s' + 1; 1 = no guidance).",
        *GUIDANCE_RANGE),
    "seed": FieldSpec(0, "Seed of the channel noise and of the sampling noise.", *SEED_RANGE),
    "fds": FieldSpec(True, "Filter the received maps with FDS (paper Eq. 2) before sampling."),
}


def default(name: str) -> Any:
    """The default of transmission setting ``name``."""
    return FIELDS[name].default


def describe(name: str) -> str:
    """The description of transmission setting ``name``."""
    return FIELDS[name].description


def check_settings(**values: Any) -> None:
    """Check each given setting against :data:`FIELDS` (``ValueError`` naming the first bad one)."""
    for name, value in values.items():
        FIELDS[name].check(name, value)
