"""Channel models over real symbols.

Paper section 3.1: the transmitter respects a power constraint
``1/k E[||z||^2] <= P`` and the channel adds white Gaussian noise,
``z_tilde = z + eps``, ``eps ~ N(0, sigma^2 I)``, with

    PSNR = 10 log10(P / sigma^2)  (dB)                                  (Eq. 1)

so ``sigma^2 = P / 10^(PSNR / 10)`` per real symbol. With power normalisation the
transmitted symbols are ``z = x / s`` with ``s = sqrt(mean(x^2))`` (so ``P = 1``); the
scale ``s`` travels in the frame header and the receiver restores ``x_tilde = s * z_tilde``.

Each model maps a batch ``x`` of shape ``(B, ...)`` (any trailing shape; one real
symbol per element) and a per-sample PSNR to a :class:`ChannelResult`. An optional
``mask`` of the same shape marks the symbols that are actually sent (1) and those
that are not (0, e.g. zero maps of absent classes in a padded training batch): the
power and the noise only involve the sent symbols, so a padded batch gives exactly what
transmitting each sample's present maps alone gives.

New models (fading, digital links) subclass :class:`ChannelModel`, implement
:meth:`ChannelModel._transmit` and register in :data:`CHANNELS`; callers only use
:func:`get_channel` and :meth:`ChannelModel.transmit`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from gesco.defaults import PAPER_PSNRS_DB  # noqa: F401 - re-exported
from gesco.errors import ChannelParameterError, ShapeError


@dataclass(frozen=True)
class ChannelResult:
    """Output of a channel for a batch of ``B`` samples.

    Attributes:
        received: received symbols in the signal's own units (already multiplied back
            by ``scale``), shape and dtype of the input.
        scale: ``(B,)`` power-normalisation scale ``s`` (1 when the model does not normalise).
        noise_variance: ``(B,)`` ``sigma^2`` per real symbol in the normalised domain.
        signal_power: ``(B,)`` mean power ``P`` of the transmitted (normalised) symbols.
        measured_snr_db: ``(B,)`` ``10 log10(P / mean(noise^2))`` measured on this draw.
        channel_uses: ``(B,)`` number of real symbols sent per sample.
        gains: fading models only: the complex channel coefficient applied to each complex
            symbol (two consecutive real symbols), ``(B, ceil(n / 2))`` complex64 in the
            flattened order of the input; ``None`` for the AWGN models.
    """

    received: torch.Tensor
    scale: torch.Tensor
    noise_variance: torch.Tensor
    signal_power: torch.Tensor
    measured_snr_db: torch.Tensor
    channel_uses: torch.Tensor
    gains: torch.Tensor | None = None


def noise_variance_for_psnr(psnr_db: torch.Tensor | float, power: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Eq. (1) solved for the noise: ``sigma^2 = P / 10^(PSNR / 10)``."""
    psnr = torch.as_tensor(psnr_db, dtype=torch.float64)
    return torch.as_tensor(power, dtype=torch.float64) / torch.pow(10.0, psnr / 10.0)


def _check_psnr(psnr_db: torch.Tensor | float | list[float], batch: int) -> torch.Tensor:
    psnr = torch.as_tensor(psnr_db, dtype=torch.float64).flatten()
    if psnr.numel() == 1:
        psnr = psnr.expand(batch)
    if psnr.numel() != batch:
        raise ChannelParameterError(f"got {psnr.numel()} PSNR values for a batch of {batch}")
    if not torch.isfinite(psnr).all():
        raise ChannelParameterError(f"PSNR must be a finite number of dB, got {psnr.tolist()}")
    return psnr


class NoParams(BaseModel):
    """Parameters of a model that takes none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelModel(ABC):
    """A channel over real symbols. Subclasses implement :meth:`_transmit`.

    Each model declares its parameters as a pydantic model :attr:`Params` (unknown
    fields are refused); :func:`get_channel` validates keyword arguments, strings
    included (the wire carries them as text), against it.
    """

    #: registry name, e.g. ``"awgn"``
    name: ClassVar[str]
    #: one-line description (listed by the services and the CLI)
    summary: ClassVar[str] = ""
    #: the model's parameters (pydantic, ``extra="forbid"``)
    Params: ClassVar[type[BaseModel]] = NoParams

    def params(self) -> dict[str, Any]:
        """The model's parameters with their defaults filled in (JSON-ready; for the logs)."""
        return {}

    def transmit(
        self,
        x: torch.Tensor,
        psnr_db: torch.Tensor | float | list[float],
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> ChannelResult:
        """Send ``x`` (``(B, ...)`` real symbols) at the given PSNR (scalar or ``(B,)``).

        ``generator`` makes the draw reproducible (seeded ``torch.Generator`` on ``x``'s device).
        """
        if x.dim() < 2:
            raise ShapeError(f"channel input must be batched (B, ...), got shape {tuple(x.shape)}")
        if x.numel() == 0:
            raise ShapeError("channel input is empty")
        if not torch.is_floating_point(x):
            x = x.float()
        if not torch.isfinite(x).all():
            raise ShapeError("channel input holds NaN or inf")
        if mask is not None and mask.shape != x.shape:
            try:
                mask = mask.expand_as(x)
            except RuntimeError:
                raise ShapeError(f"mask shape {tuple(mask.shape)} does not match input shape {tuple(x.shape)}") from None
        psnr = _check_psnr(psnr_db, x.shape[0])
        return self._transmit(x, psnr, mask, generator)

    def symbol_noise_std(self, psnr_db: float, power: float) -> float | None:
        """Standard deviation of the Gaussian noise this model adds to each real symbol, in the
        signal's own units (after the receiver multiplies back by the power scale), for a signal
        of mean power ``power = mean(x^2)`` sent at ``psnr_db``; ``None`` when the noise is not one
        fixed Gaussian per symbol (fading: it depends on the drawn gains)."""
        return None

    @abstractmethod
    def _transmit(
        self, x: torch.Tensor, psnr_db: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator | None
    ) -> ChannelResult:
        ...


def _per_sample_mean(v: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over all but the batch dim (masked), accumulated in float64, and the symbol count per sample."""
    flat = v.reshape(v.shape[0], -1)
    if mask is None:
        n = torch.full((v.shape[0],), flat.shape[1], dtype=torch.float64, device=v.device)
        return flat.sum(1, dtype=torch.float64) / n, n
    m = mask.reshape(v.shape[0], -1).to(flat.dtype)
    n = m.sum(1, dtype=torch.float64)
    return (flat * m).sum(1, dtype=torch.float64) / n.clamp_min(1.0), n


def _gaussian(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float32)


class AWGNChannel(ChannelModel):
    """Additive white Gaussian noise with power normalisation (the paper, Eq. 1).

    Args:
        normalize_power: scale each sample to ``P = 1`` before the channel (the paper's
            "we normalize features power P to 1"); the receiver multiplies back by ``s``.
    """

    name = "awgn"
    summary = "additive white Gaussian noise, power normalised to P = 1 (Eq. 1)"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        normalize_power: bool = True

    def __init__(self, normalize_power: bool = True) -> None:
        self.normalize_power = normalize_power

    def params(self) -> dict[str, Any]:
        return {"normalize_power": self.normalize_power}

    def symbol_noise_std(self, psnr_db: float, power: float) -> float | None:
        """``sqrt(P / 10^(PSNR/10))`` with ``P = power``: normalised to ``P = 1`` the noise is
        ``sigma^2 = 1 / 10^(PSNR/10)`` (Eq. 1) and the receiver's scale ``s = sqrt(power)``
        multiplies it by ``s^2``; without normalisation Eq. (1) applies to ``power`` directly."""
        return float(torch.sqrt(noise_variance_for_psnr(float(psnr_db), float(power))))

    def _transmit(self, x, psnr_db, mask, generator):
        power_in, n = _per_sample_mean(x * x, mask)
        if self.normalize_power:
            scale = torch.sqrt(power_in).clamp_min(1e-12)
        else:
            scale = torch.ones_like(power_in)
        view = (-1,) + (1,) * (x.dim() - 1)
        z = x / scale.view(view).to(x.dtype)
        power = power_in / scale**2
        # Eq. (1): sigma^2 = P / 10^(PSNR/10); with normalisation P = 1 exactly.
        var = noise_variance_for_psnr(psnr_db.to(x.device), power if not self.normalize_power else 1.0)
        noise = _gaussian(x, generator) * torch.sqrt(var).view(view).float()
        if mask is not None:
            noise = noise * mask.to(noise.dtype)
        z_rx = z + noise.to(z.dtype)
        noise_power, _ = _per_sample_mean(noise * noise, mask)
        snr = 10.0 * torch.log10(power / noise_power.clamp_min(1e-300))
        return ChannelResult(
            received=(z_rx * scale.view(view).to(z_rx.dtype)).to(x.dtype),
            scale=scale.float(),
            noise_variance=var.float().expand(x.shape[0]).clone(),
            signal_power=power.float(),
            measured_snr_db=snr.float(),
            channel_uses=n.long(),
        )


#: noise standard deviation per nominal PSNR in the authors' public code (see docs/authors-code.md)
AUTHORS_NOISE_STD: dict[float, float] = {
    100.0: 0.0,
    30.0: 0.05,
    25.0: 0.08,
    20.0: 0.13,
    15.0: 0.22,
    10.0: 0.36,
    5.0: 0.6,
    1.0: 0.9,
}


def _authors_std(psnr_db: float) -> float:
    """:data:`AUTHORS_NOISE_STD` at a nominal PSNR (``ChannelParameterError`` for another)."""
    if psnr_db not in AUTHORS_NOISE_STD:
        raise ChannelParameterError(f"the authors-code channel only knows PSNR {sorted(AUTHORS_NOISE_STD)} dB, "
                                    f"got {psnr_db:g}")
    return AUTHORS_NOISE_STD[psnr_db]


class AuthorsCodeChannel(ChannelModel):
    """The authors'-code convention: maps not normalised, noise std looked up per PSNR.

    The table (:data:`AUTHORS_NOISE_STD`) does not follow Eq. (1); it is here so that
    results can be compared under both conventions. Only its nominal PSNRs are accepted.
    Noise is independent per symbol, as in the authors' sampling code.
    """

    name = "authors-code"
    summary = "the authors' code: un-normalised maps, noise std looked up per nominal PSNR"

    def symbol_noise_std(self, psnr_db: float, power: float) -> float | None:
        """The table's standard deviation (the maps are not normalised: ``power`` plays no part)."""
        return _authors_std(float(psnr_db))

    def _transmit(self, x, psnr_db, mask, generator):
        stds = [_authors_std(float(p)) for p in psnr_db.tolist()]
        std = torch.tensor(stds, dtype=torch.float64, device=x.device)
        view = (-1,) + (1,) * (x.dim() - 1)
        noise = _gaussian(x, generator) * std.view(view).float()
        if mask is not None:
            noise = noise * mask.to(noise.dtype)
        power, n = _per_sample_mean(x * x, mask)
        noise_power, _ = _per_sample_mean(noise * noise, mask)
        snr = 10.0 * torch.log10(power / noise_power.clamp_min(1e-300))
        return ChannelResult(
            received=(x + noise.to(x.dtype)),
            scale=torch.ones(x.shape[0], device=x.device),
            noise_variance=(std**2).float(),
            signal_power=power.float(),
            measured_snr_db=snr.float(),
            channel_uses=n.long(),
        )


#: every channel model by registry name; the fading / OFDM models register from
#: :mod:`gesco.channel` (``register_channel``)
CHANNELS: dict[str, type[ChannelModel]] = {
    AWGNChannel.name: AWGNChannel,
    AuthorsCodeChannel.name: AuthorsCodeChannel,
}


def register_channel(cls: type[ChannelModel]) -> type[ChannelModel]:
    """Add a model to :data:`CHANNELS` under ``cls.name`` (usable as a class decorator)."""
    CHANNELS[cls.name] = cls
    return cls


def validate_channel_params(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check ``params`` against the model's :attr:`ChannelModel.Params`; return them typed, defaults filled.

    Values may be strings (``"64"``, ``"true"``): the wire and the forms carry text.

    Raises:
        ChannelParameterError: unknown model name (the message lists the models), unknown
            parameter or a value that does not validate (the message lists the parameters).
    """
    try:
        cls = CHANNELS[name]
    except KeyError:
        raise ChannelParameterError(f"unknown channel model {name!r}; known: {sorted(CHANNELS)}") from None
    try:
        return cls.Params(**(params or {})).model_dump()
    except ValidationError as e:
        fields = ", ".join(f"{k} ({_describe_field(f)})" for k, f in cls.Params.model_fields.items()) or "none"
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}" for err in e.errors())
        raise ChannelParameterError(
            f"bad parameters for channel {name!r}: {problems}. Parameters of {name!r}: {fields}"
        ) from None


def parse_channel_params(name: str, text: str | None) -> dict[str, Any]:
    """Channel parameters from a JSON object (a form field, a CLI option), validated for model ``name``.

    ``""`` means the defaults. Returns the typed parameters with defaults filled in.

    Raises:
        ChannelParameterError: not a JSON object, unknown model or bad parameters.
    """
    import json

    params: Any = {}
    if text and text.strip():
        try:
            params = json.loads(text)
        except json.JSONDecodeError as e:
            raise ChannelParameterError(f"channel_params must be a JSON object, e.g. {{\"block_length\": 64}}: {e}") from None
        if not isinstance(params, dict):
            raise ChannelParameterError(f"channel_params must be a JSON object, got {type(params).__name__}")
    return validate_channel_params(name, params)


def channel_catalogue() -> str:
    """One line per model, ``name: summary``, for help texts and API descriptions."""
    return "; ".join(f"'{n}': {CHANNELS[n].summary}" for n in sorted(CHANNELS))


def params_to_text(params: dict[str, Any] | None) -> dict[str, str]:
    """Channel parameters as the wire carries them (``map<string, string>``): ``True`` -> ``"true"``."""
    out: dict[str, str] = {}
    for k, v in (params or {}).items():
        out[str(k)] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def _describe_field(field: Any) -> str:
    from typing import Literal, get_args, get_origin

    if get_origin(field.annotation) is Literal:
        ann = "one of " + "/".join(repr(a) for a in get_args(field.annotation))
    else:
        ann = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
    return f"{ann}, default {field.default!r}"


def get_channel(name: str = "awgn", **kwargs: Any) -> ChannelModel:
    """Build a channel model by registry name (see :data:`CHANNELS`) and parameters.

    Raises:
        ChannelParameterError: unknown name (the message lists the known models) or bad parameters.
    """
    params = validate_channel_params(name, kwargs)
    return CHANNELS[name](**params)
