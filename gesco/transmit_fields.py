"""The settings of one transmission, declared once: type, default, range, meaning, flag, wire field.

A transmission's settings travel through several representations, and every one of them is
*derived* from :data:`FIELDS` (in the spirit of diffusers' ``register_to_config``):

============================  ===========================================================
representation                derived by
============================  ===========================================================
the sender's form             ``sender.schemas.TransmitParams`` (:func:`form_field` per entry)
the wire message              :func:`to_wire` / :func:`from_wire` (``TransmitParams`` and the
                              frame's codec fields in ``proto/gesco.proto``)
the core's settings           :class:`gesco.link.TransmitSettings` (checked against FIELDS
                              by ``tests/test_transmit_fields.py``)
the receiver's job record     ``receiver.schemas.JobSettings`` (one field per entry)
``gesco send``'s flags        :func:`add_cli_flags` / :func:`form_from_cli`
``gesco evaluate``'s flags    help, choices and range from :func:`cli_help`
============================  ===========================================================

Adding a setting: add its :class:`FieldSpec` here, its field in ``proto/gesco.proto``
(``optional``, so that "unset" means :attr:`FieldSpec.default`) and read it where it is used.

**Unset means the declared default.** A wire message that leaves a field unset (proto3
``optional`` presence) gets :attr:`FieldSpec.default`, except the fields marked
:attr:`FieldSpec.receiver_default` (sampler, steps, guidance scale): those get the *receiver's*
default, its model card's ``conditioning.recommended_sampling`` when it has one (an imported
authors' model: ``dpmpp-2m-sde``, 20 steps, guidance 2), else the declared default
(:func:`model_defaults`). The sender leaves those three unset when its client did.

This module imports no torch (``gesco --help`` builds the flags from it).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gesco.defaults import (
    APPEARANCE_BIT_DEPTH_RANGE,
    APPEARANCE_MODES,
    APPEARANCE_REPEAT_AUTO,
    APPEARANCE_REPEAT_RANGE,
    APPEARANCE_TARGET_BIT_ERROR_RATE,
    DEFAULT_CODEC,
    DEFAULT_GUIDANCE,
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    GUIDANCE_RANGE,
    LOSSLESS_CODEC_NAMES,
    SAMPLERS,
    STEPS_RANGE,
)

#: range of PSNR values (dB) a transmission may request: below -20 dB the noise is 100x the
#: signal power; 100 dB is the paper's noiseless channel
PSNR_RANGE_DB: tuple[float, float] = (-20.0, 100.0)
#: range of seeds (a non-negative 64-bit integer, as on the wire)
SEED_RANGE: tuple[int, int] = (0, 2**63 - 1)
#: range of the block-downsampling factor of the maps
DOWNSAMPLE_RANGE: tuple[int, int] = (1, 64)

#: where a setting travels in a ``SemanticFrame``: the ``transmit`` message (``TransmitParams``),
#: the frame's own codec fields (``codec``, ``codec_params.factor``), or its ``appearance`` message
#: (the last two read by :meth:`gesco.link.TransmitSettings.from_frame`)
WIRE_TRANSMIT = "transmit"
WIRE_CODEC = "codec"
#: the frame's ``appearance`` message (``AppearanceParams``: the appearance side channel)
WIRE_APPEARANCE = "appearance"


@dataclass(frozen=True)
class FieldSpec:
    """One transmission setting.

    Attributes:
        kind: its Python type (``float``, ``int``, ``str``, ``bool``; ``dict`` for the channel's
            parameters: a JSON object in the form, ``KEY=VALUE`` flags on the command line, a
            ``map<string, string>`` on the wire).
        default: its value when not given (also when unset on the wire).
        description: what it means (shown in the API schema and the CLI help).
        flag: the ``gesco send`` flag (``--no-fds`` style for a bool whose default is true).
        wire: :data:`WIRE_TRANSMIT` (a field of the same name in ``TransmitParams``),
            :data:`WIRE_CODEC` (the frame's codec fields) or :data:`WIRE_APPEARANCE` (the
            frame's ``appearance`` message).
        ge, le: the inclusive range of a number (``None``: unbounded).
        choices: the allowed values of a name (``None``: any, or see ``registry``).
        registry: for a name whose values are the keys of a registry in a layer above this one
            (``"gesco.channel.CHANNELS"``, whose models import torch), that registry's name. This
            module never imports it; the layers that may (the sender's form, the command line of
            ``gesco_net``, the channel's and receiver's ingest) pass its names in (``names=``).
        receiver_default: unset means the receiver's default (:func:`model_defaults`).
    """

    kind: type
    default: Any
    description: str
    flag: str
    wire: str = WIRE_TRANSMIT
    ge: float | None = None
    le: float | None = None
    choices: tuple[str, ...] | None = None
    registry: str | None = None
    receiver_default: bool = False

    def check(self, name: str, value: Any, names: Iterable[str] | None = None) -> None:
        """Raise ``ValueError`` naming the field when ``value`` is out of range or not a choice
        (``names``: the registry's names, for a field with a ``registry``; unchecked without them)."""
        allowed = self.choices if names is None else tuple(sorted(names))
        if allowed is not None and value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.ge is not None or self.le is not None:
            v = float(value)
            if v != v or (self.ge is not None and v < self.ge) or (self.le is not None and v > self.le):
                raise ValueError(f"{name} must be in [{self.ge:g}, {self.le:g}], got {value!r}")


FIELDS: dict[str, FieldSpec] = {
    "psnr_db": FieldSpec(
        float, 10.0, "Channel PSNR in dB, Eq. (1): 10 log10(P / sigma^2) with P = 1 after normalisation. "
        "The paper uses 1, 5, 10, 15, 20, 30 and 100 dB.", "--psnr", ge=PSNR_RANGE_DB[0], le=PSNR_RANGE_DB[1]),
    "channel": FieldSpec(str, "awgn", "Channel model (docs/channel.md).", "--channel",
                         registry="gesco.channel.CHANNELS"),
    "channel_params": FieldSpec(
        dict, None, "Parameters of the channel model, e.g. {\"block_length\": 64, \"equalizer\": \"zf\"} for "
        "'rayleigh' or {\"model\": \"C\", \"delay_spread_ns\": 300} for 'tdl'; empty = the model's defaults.",
        "--channel-param"),
    "codec": FieldSpec(
        str, DEFAULT_CODEC, "Lossless map codec (the inner codec when downsample > 1).", "--codec",
        wire=WIRE_CODEC, choices=tuple(sorted(LOSSLESS_CODEC_NAMES))),
    "downsample": FieldSpec(
        int, 1, "Block-downsampling factor k of the maps before coding (1 = full maps; k > 1 sends "
        "ceil(H/k) x ceil(W/k) maps: fewer bits and channel uses, lossy).", "--downsample",
        wire=WIRE_CODEC, ge=DOWNSAMPLE_RANGE[0], le=DOWNSAMPLE_RANGE[1]),
    "appearance": FieldSpec(
        str, "off", "Appearance side channel (beyond the paper; docs/colour/appearance.md): 'off' (the paper's "
        "setting: the maps only), 'mean' (the image's mean RGB, 3 x appearance_bits bits) or 'classes' (the mean "
        "RGB of every present class, 3 x appearance_bits bits per class), sent through the same channel and "
        "counted in the bit budget; the receiver gives its image those colours.", "--appearance",
        wire=WIRE_APPEARANCE, choices=APPEARANCE_MODES),
    "appearance_bits": FieldSpec(
        int, 6, "Bits per colour component of the appearance side channel (uniform quantiser over 0-255).",
        "--appearance-bits", wire=WIRE_APPEARANCE, ge=APPEARANCE_BIT_DEPTH_RANGE[0], le=APPEARANCE_BIT_DEPTH_RANGE[1]),
    "appearance_repeat": FieldSpec(
        int, APPEARANCE_REPEAT_AUTO, "Channel uses per bit of the appearance side channel (a repetition code: the "
        f"receiver averages the copies), {APPEARANCE_REPEAT_RANGE[0]}-{APPEARANCE_REPEAT_RANGE[1]}; "
        f"{APPEARANCE_REPEAT_AUTO} (default): the sender chooses the smallest whose residual bit-error rate at the "
        f"transmission's PSNR and channel is at most {APPEARANCE_TARGET_BIT_ERROR_RATE:g} (1 at 100 dB, 16 at 1 dB "
        "on AWGN; the fading channels need it given).", "--appearance-repeat", wire=WIRE_APPEARANCE,
        ge=APPEARANCE_REPEAT_AUTO, le=APPEARANCE_REPEAT_RANGE[1]),
    "sampler": FieldSpec(
        str, DEFAULT_SAMPLER, "Receiver's sampler: 'dpmpp-2m-sde-ode-mean' (default: SDE-DPM-Solver++(2M) with a "
        "deterministic image mean, 8 steps on the receiver's default guidance-distilled student), "
        "'dpmpp-2m-sde' (SDE-DPM-Solver++(2M); 20 steps is the guided model's setting), 'respaced' (ancestral on "
        "a respaced chain), 'dpmpp-2m' (DPM-Solver++(2M)), 'ddim', 'ancestral' (the paper's 1000 steps; 'steps' "
        "is ignored). A distilled student refuses 'respaced' and 'ancestral'.",
        "--sampler", choices=SAMPLERS, receiver_default=True),
    "steps": FieldSpec(int, DEFAULT_STEPS, "Sampling steps (network evaluations).", "--steps",
                       ge=STEPS_RANGE[0], le=STEPS_RANGE[1], receiver_default=True),
    "guidance_scale": FieldSpec(
        float, DEFAULT_GUIDANCE, "Classifier-free guidance scale s (paper Eq. 13 with s = s' + 1; 1 = no guidance).",
        "--guidance", ge=GUIDANCE_RANGE[0], le=GUIDANCE_RANGE[1], receiver_default=True),
    "seed": FieldSpec(int, 0, "Seed of the channel noise and of the sampling noise.", "--seed",
                      ge=SEED_RANGE[0], le=SEED_RANGE[1]),
    "fds": FieldSpec(bool, True, "Filter the received maps with FDS (paper Eq. 2) before sampling.", "--no-fds"),
}

#: the settings whose unset value is the receiver's (its model's recommended sampling)
RECEIVER_DEFAULTS: tuple[str, ...] = tuple(n for n, s in FIELDS.items() if s.receiver_default)


def default(name: str) -> Any:
    """The declared default of transmission setting ``name`` (``{}`` for the channel's parameters)."""
    value = FIELDS[name].default
    return {} if FIELDS[name].kind is dict and value is None else value


def describe(name: str) -> str:
    """The description of transmission setting ``name``."""
    return FIELDS[name].description


def check_settings(**values: Any) -> None:
    """Check each given setting against :data:`FIELDS` (``ValueError`` naming the first bad one)."""
    for name, value in values.items():
        FIELDS[name].check(name, value)


# --------------------------------------------------------------------------- receiver defaults
def model_defaults(card: Any) -> dict[str, Any]:
    """The receiver's defaults of the :data:`RECEIVER_DEFAULTS` settings for a model card.

    A card with ``conditioning["recommended_sampling"]`` (an imported authors' model,
    :mod:`gesco.diffusion.authors_import`) gives its ``sampler`` / ``steps`` /
    ``guidance_scale``; any the card does not name keep the declared default.
    """
    out = {name: default(name) for name in RECEIVER_DEFAULTS}
    conditioning = getattr(card, "conditioning", None) or {}
    recommended = conditioning.get("recommended_sampling") if isinstance(conditioning, Mapping) else None
    for name, value in (recommended or {}).items():
        if name in out:
            out[name] = FIELDS[name].kind(value)
    return out


# --------------------------------------------------------------------------- the wire
def from_wire(msg: Any, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``transmit``-travelling settings of a ``TransmitParams`` message, unset -> default.

    Args:
        msg: a ``gesco.v1.TransmitParams`` (duck-typed: ``HasField`` and attributes).
        defaults: values for unset fields that win over the declared defaults (the receiver
            passes :func:`model_defaults` of its model).
    Returns:
        ``{name: value}`` for every :data:`FIELDS` entry with ``wire == "transmit"``.
    """
    defaults = defaults or {}
    out: dict[str, Any] = {}
    for name, spec in FIELDS.items():
        if spec.wire != WIRE_TRANSMIT:
            continue
        if spec.kind is dict:
            out[name] = dict(getattr(msg, name))
        elif msg.HasField(name):
            out[name] = spec.kind(getattr(msg, name))
        else:
            out[name] = defaults.get(name, default(name))
    return out


def to_wire(values: Mapping[str, Any], msg: Any, omit: Iterable[str] = ()) -> Any:
    """Set the ``transmit``-travelling ``values`` on ``msg`` (a ``TransmitParams``), except ``omit``.

    Every set field is present on the wire (proto3 ``optional``), its default value included;
    an omitted one means "the receiver's default" (:func:`from_wire`). A dict value must hold
    text already (``gesco.channel.params_to_text``).
    """
    skip = set(omit)
    for name, spec in FIELDS.items():
        if spec.wire != WIRE_TRANSMIT or name in skip:
            continue
        value = values[name]
        if spec.kind is dict:
            getattr(msg, name).clear()
            getattr(msg, name).update(value or {})
        else:
            setattr(msg, name, spec.kind(value))
    return msg


# --------------------------------------------------------------------------- command line
def cli_help(name: str, default_text: str | None = None) -> str:
    """A flag's help: the description, the choices or range, and the default."""
    spec = FIELDS[name]
    text = spec.description.rstrip(".")
    if spec.ge is not None:
        text += f"; in [{_num(spec.ge, spec.kind)}, {_num(spec.le, spec.kind)}]"
    shown = default_text if default_text is not None else (
        None if spec.kind is dict else repr(spec.default) if spec.kind is str else f"{spec.default}")
    return text + (f" (default {shown})" if shown is not None else "")


_KIND_WORDS = {int: "an integer", float: "a number", str: "text", bool: "true or false"}


def cli_type(name: str, names: Callable[[], Iterable[str]] | None = None) -> Any:
    """An argparse ``type`` for setting ``name``: converts the text to :attr:`FieldSpec.kind`
    and checks it with :meth:`FieldSpec.check` (the command line's one check of the value; a bad
    one stops argparse with ``argument --psnr: psnr_db must be in [-20, 100], got 200.0``).
    ``names``: called at parse time for the names of the field's registry (so that ``--help``
    imports nothing heavy)."""
    spec = FIELDS[name]

    def parse(text: str) -> Any:
        try:
            value = spec.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {_KIND_WORDS[spec.kind]}, got {text!r}") from None
        try:
            spec.check(name, value, names() if names is not None else None)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value

    parse.__name__ = spec.kind.__name__  # argparse names the type in its "invalid ... value" message
    return parse


def _num(x: float, kind: type) -> str:
    return str(int(x)) if kind is int else f"{x:g}"


def add_cli_flags(parser: argparse.ArgumentParser,
                  registries: Mapping[str, Callable[[], Iterable[str]]] | None = None) -> None:
    """Add one ``gesco send`` flag per :data:`FIELDS` entry (its :attr:`FieldSpec.flag`).

    ``registries``: for each :attr:`FieldSpec.registry` a function returning its names (called
    when the flag is parsed); a registry field without one is left to the sender's check.

    Every flag defaults to ``None`` = not given: :func:`form_from_cli` leaves it out of the form
    and the sender's default applies (the receiver's, for :data:`RECEIVER_DEFAULTS`); the help
    shows the declared default. Each value is checked here (:func:`cli_type`), before anything is
    uploaded; the sender checks the form again, as the REST boundary must for any client.
    """
    for name, spec in FIELDS.items():
        dest = f"field_{name}"
        if spec.kind is bool:
            on = spec.flag.removeprefix("--no-")
            parser.add_argument(spec.flag, dest=dest, action="store_const", const=not spec.default, default=None,
                                help=f"do not {spec.description[0].lower()}{spec.description[1:]}" if spec.default
                                else spec.description)
            if on != spec.flag:
                parser.add_argument(f"--{on}", dest=dest, action="store_const", const=spec.default,
                                    help=argparse.SUPPRESS)
        elif spec.kind is dict:
            parser.add_argument(spec.flag, dest=dest, action="append", default=None, metavar="KEY=VALUE",
                                help=cli_help(name) + "; repeatable (e.g. block_length=64, equalizer=zf; "
                                "tdl: model=C, delay_spread_ns=300, speed_mps=3)")
        else:
            choices = spec.choices
            shown = "the receiver's: its model's recommended sampling, else " + repr(spec.default) \
                if spec.receiver_default else None
            names = (registries or {}).get(spec.registry) if spec.registry else None
            parser.add_argument(spec.flag, dest=dest, type=cli_type(name, names), default=None, choices=choices,
                                metavar=None if choices else name.upper(), help=cli_help(name, shown))


def form_from_cli(args: argparse.Namespace) -> dict[str, str]:
    """The multipart form fields of the flags given (``None`` = not given, left out).

    Raises:
        ValueError: a ``--channel-param`` that is not ``KEY=VALUE``.
    """
    form: dict[str, str] = {}
    for name, spec in FIELDS.items():
        value = getattr(args, f"field_{name}")
        if value is None:
            continue
        if spec.kind is dict:
            form[name] = json.dumps(_key_values(value, spec.flag))
        elif spec.kind is bool:
            form[name] = "true" if value else "false"
        else:
            form[name] = str(value)
    return form


def _key_values(items: list[str], flag: str) -> dict[str, str]:
    """``["block_length=64", ...]`` -> ``{"block_length": "64"}`` (the sender validates the values)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out
