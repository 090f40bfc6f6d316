"""Every representation of a transmission's settings is derived from the one declaration,
gesco.transmit_fields.FIELDS: the sender's form, the core's settings, the receiver's job
record, the ``gesco send`` flags and the wire mapping (unset = the declared default)."""

from __future__ import annotations

import argparse
import dataclasses
import typing

import pytest

from gesco.codecs.lossless import LOSSLESS_CODECS
from gesco.defaults import GUIDED_SAMPLER, GUIDED_STEPS, LOSSLESS_CODEC_NAMES
from gesco.diffusion.pipeline import SamplingSettings
from gesco.errors import GescoInputError
from gesco.evaluate.methods import METHODS
from gesco.link import TransmitSettings
from gesco.transmit_fields import (
    FIELDS,
    RECEIVER_DEFAULTS,
    WIRE_TRANSMIT,
    FieldSpec,
    add_cli_flags,
    check_settings,
    default,
    form_from_cli,
    from_wire,
    model_defaults,
    to_wire,
)
from gesco.wire import gesco_pb2 as pb
from gesco_net.cli import build_parser
from receiver.schemas import JobSettings
from sender.schemas import REGISTRIES, TransmitParams, form_field

#: a value of each setting other than its default (and not a proto3 zero value)
OTHER = {"psnr_db": 3.5, "channel": "rayleigh", "channel_params": {"block_length": "64"}, "codec": "zlib",
         "downsample": 4, "sampler": "ddim", "steps": 5, "guidance_scale": 1.5, "seed": 9, "fds": False,
         "appearance": "mean", "appearance_bits": 4, "appearance_repeat": 8}


def _bounds(field_info) -> tuple:
    ge = next((m.ge for m in field_info.metadata if hasattr(m, "ge")), None)
    le = next((m.le for m in field_info.metadata if hasattr(m, "le")), None)
    return ge, le


def test_other_values_cover_every_declared_field():
    assert set(OTHER) == set(FIELDS)
    assert all(OTHER[n] != default(n) for n in FIELDS)


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_declared_field_is_in_the_form_the_core_and_the_job_record(name):
    spec = FIELDS[name]
    form = TransmitParams.model_fields[name]
    assert form.default == ("" if spec.kind is dict else spec.default)  # the channel's parameters: JSON text
    assert form.description.startswith(spec.description.split(",")[0].rstrip("."))
    if spec.ge is not None:
        assert _bounds(form) == (spec.ge, spec.le)
    if spec.choices is not None:
        assert typing.get_args(form.annotation) == spec.choices
    if spec.registry is not None:
        assert typing.get_args(form.annotation) == tuple(sorted(REGISTRIES[spec.registry]))
    core = {f.name: f for f in dataclasses.fields(TransmitSettings)}
    assert name in core
    if spec.kind is not dict:
        assert core[name].default == spec.default
    job = JobSettings.model_fields[name]
    assert spec.description in job.description
    assert job.is_required() == (spec.kind is not dict)


def test_no_representation_has_a_setting_the_declaration_lacks():
    assert {f.name for f in dataclasses.fields(TransmitSettings)} == set(FIELDS)
    assert set(JobSettings.model_fields) == set(FIELDS)
    assert set(TransmitParams.model_fields) == set(FIELDS) | {"id"}
    transmit_wire = {n for n, s in FIELDS.items() if s.wire == WIRE_TRANSMIT}
    assert set(pb.TransmitParams.DESCRIPTOR.fields_by_name) == transmit_wire


def test_registries_are_named_not_imported_by_the_declaration():
    """A registry above the declaration's layer (the channel models) is passed in by the layers
    that may import it: the sender's form and the command lines' flags (gesco send, gesco
    evaluate --channel: one mapping, gesco.commands.registries) know every declared one."""
    import gesco.channel
    from gesco.commands.registries import CLI_REGISTRIES

    declared = {s.registry for s in FIELDS.values() if s.registry}
    assert declared == {"gesco.channel.CHANNELS"} and set(REGISTRIES) == declared == set(CLI_REGISTRIES)
    assert REGISTRIES["gesco.channel.CHANNELS"] is gesco.channel.CHANNELS
    assert CLI_REGISTRIES["gesco.channel.CHANNELS"]() == sorted(gesco.channel.CHANNELS)


def test_codec_names_are_declared_once():
    assert set(LOSSLESS_CODECS) == set(LOSSLESS_CODEC_NAMES)
    assert FIELDS["codec"].default in LOSSLESS_CODEC_NAMES


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_declared_field_has_its_send_flag(name):
    spec = FIELDS[name]
    parser = build_parser()
    given = ["send", "scene.png", spec.flag] + ([] if spec.kind is bool else
                                                 ["block_length=64"] if spec.kind is dict else [str(OTHER[name])])
    args = parser.parse_args(given)
    form = form_from_cli(args)
    assert list(form) == [name]  # only the flag given goes in the form
    want = {"channel_params": '{"block_length": "64"}', "fds": "false"}.get(name, str(OTHER[name]))
    assert form[name] == want
    assert form_from_cli(parser.parse_args(["send", "scene.png"])) == {}  # nothing given: the services' defaults


def test_send_help_shows_the_declared_defaults_and_ranges(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["send", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "in [-20, 100] (default 10.0)" in text
    assert "else 'dpmpp-2m-sde-ode-mean'" in text and "(default 'context')" in text and "in [1, 64]" in text


def test_evaluate_flags_follow_the_table():
    # the evaluation's rows sample the guided model by default (its ours-fast row: the receiver's defaults)
    ev = build_parser().parse_args(["evaluate"])
    assert (ev.sampler, ev.steps, ev.guidance, ev.channel) == (GUIDED_SAMPLER, GUIDED_STEPS, default("guidance_scale"),
                                                               default("channel"))
    assert METHODS["ours-fast"].sampler == default("sampler") and METHODS["ours-fast"].steps == default("steps")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--sampler", "euler"])


def test_a_new_declaration_reaches_the_form_the_flags_and_the_wire():
    """Adding a setting: its declaration alone gives its form field, its flag and its wire mapping."""
    spec = FieldSpec(int, 3, "A new setting.", "--new-setting", ge=1, le=9)
    fields = dict(FIELDS, new_setting=spec)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("gesco.transmit_fields.FIELDS", fields)
        mp.setattr("sender.schemas.FIELDS", fields)
        kind, info = form_field("new_setting")
        assert kind is int and info.default == 3 and _bounds(info) == (1, 9) and info.description == "A new setting."
        parser = argparse.ArgumentParser()
        add_cli_flags(parser)
        assert form_from_cli(parser.parse_args(["--new-setting", "7"])) == {"new_setting": "7"}

        class Message:  # a TransmitParams with the new field, as protoc would generate it
            def __init__(self):
                self.fields = {}
                self.channel_params = {}

            def HasField(self, name):
                return name in self.fields

            def __getattr__(self, name):
                return self.__dict__["fields"].get(name, 0)

            def __setattr__(self, name, value):
                if name in ("fields", "channel_params"):
                    object.__setattr__(self, name, value)
                else:
                    self.fields[name] = value

        values = {n: default(n) for n in fields}
        msg = to_wire(values | {"new_setting": 5}, Message())
        assert from_wire(msg)["new_setting"] == 5
        assert from_wire(Message())["new_setting"] == 3  # unset: the declared default


# --------------------------------------------------------------------------- the wire
def test_an_empty_message_means_every_declared_default():
    settings = TransmitSettings.from_message(pb.TransmitParams())
    assert settings == TransmitSettings()
    for name in FIELDS:
        assert getattr(settings, name) == default(name), name


@pytest.mark.parametrize("name", [n for n, s in FIELDS.items() if s.wire == WIRE_TRANSMIT and s.kind is not dict])
def test_each_unset_field_gets_its_declared_default_and_the_rest_survive(name):
    full = TransmitSettings(**{n: OTHER[n] for n in FIELDS if FIELDS[n].wire == WIRE_TRANSMIT})
    msg = full.to_message()
    msg.ClearField(name)
    back = TransmitSettings.from_message(pb.TransmitParams.FromString(msg.SerializeToString()))
    assert getattr(back, name) == default(name)
    for other in FIELDS:
        if other != name and FIELDS[other].wire == WIRE_TRANSMIT:
            assert getattr(back, other) == getattr(full, other), other


def test_a_message_with_every_field_set_decodes_as_before():
    """An old client (no presence) serialises the same bytes for non-zero values: same settings."""
    msg = pb.TransmitParams(psnr_db=3.5, channel="rayleigh", sampler="ddim", steps=5, guidance_scale=1.5, seed=9,
                            fds=True, channel_params={"block_length": "64"})
    back = TransmitSettings.from_message(pb.TransmitParams.FromString(msg.SerializeToString()))
    assert (back.psnr_db, back.channel, back.sampler, back.steps, back.guidance_scale, back.seed, back.fds,
            back.channel_params) == (3.5, "rayleigh", "ddim", 5, 1.5, 9, True, {"block_length": "64"})


def test_defaults_at_their_value_are_present_on_the_wire():
    """fds=False, seed=0, guidance 0 are sent explicitly (presence), not read back as "unset"."""
    msg = TransmitSettings(fds=False, seed=0, guidance_scale=0.0).to_message()
    assert msg.HasField("fds") and msg.HasField("seed") and msg.HasField("guidance_scale")
    back = TransmitSettings.from_message(pb.TransmitParams.FromString(msg.SerializeToString()))
    assert back.fds is False and back.guidance_scale == 0.0


def test_omitted_receiver_defaults_take_the_model_card():
    msg = TransmitSettings(steps=3).to_message(omit=RECEIVER_DEFAULTS)
    assert not any(msg.HasField(n) for n in RECEIVER_DEFAULTS)
    card = type("Card", (), {"conditioning": {"recommended_sampling": {"sampler": "dpmpp-2m-sde", "steps": 20,
                                                                        "guidance_scale": 2.0}}})()
    back = TransmitSettings.from_message(msg, model_defaults(card))
    assert (back.sampler, back.steps, back.guidance_scale) == ("dpmpp-2m-sde", 20, 2.0)
    plain = TransmitSettings.from_message(msg, model_defaults(type("Card", (), {"conditioning": {}})()))
    assert (plain.sampler, plain.steps, plain.guidance_scale) == tuple(default(n) for n in RECEIVER_DEFAULTS)
    # a field the client did set wins over the card
    explicit = TransmitSettings.from_message(TransmitSettings(steps=3).to_message(), model_defaults(card))
    assert explicit.steps == 3 and explicit.sampler == default("sampler")


def test_frame_codec_fields_map_to_codec_and_downsample():
    from gesco.link import codec_choice

    for codec, k in (("context", 1), ("zlib", 1), ("context", 4), ("contour", 2)):
        name, params = codec_choice(codec, k)
        frame = pb.SemanticFrame(codec=name, codec_params=pb.CodecParams(**params))
        back = TransmitSettings.from_frame(frame)
        assert (back.codec, back.downsample) == (codec, k)


# --------------------------------------------------------------------------- ranges
def test_sampling_settings_accept_exactly_the_table_ranges():
    steps, guidance = FIELDS["steps"], FIELDS["guidance_scale"]
    SamplingSettings(steps=int(steps.le), guidance_scale=guidance.le).validate()
    SamplingSettings(steps=int(steps.ge), guidance_scale=guidance.ge).validate()
    with pytest.raises(GescoInputError, match="steps"):
        SamplingSettings(steps=int(steps.le) + 1).validate()
    with pytest.raises(GescoInputError, match="guidance"):
        SamplingSettings(guidance_scale=guidance.le + 0.5).validate()
    assert SamplingSettings().sampler == default("sampler") and SamplingSettings().steps == default("steps")


def test_check_settings_names_the_bad_field():
    check_settings(psnr_db=10.0, sampler="ddim", steps=5, codec="zlib", downsample=4, channel="tdl")
    FIELDS["channel"].check("channel", "tdl", names=["awgn", "tdl"])
    with pytest.raises(ValueError, match="psnr_db must be in"):
        check_settings(psnr_db=200.0)
    with pytest.raises(ValueError, match="psnr_db must be in"):
        check_settings(psnr_db=float("nan"))
    with pytest.raises(ValueError, match="sampler must be one of"):
        check_settings(sampler="euler")
    with pytest.raises(ValueError, match="channel must be one of awgn, tdl, got 'fading'"):
        FIELDS["channel"].check("channel", "fading", names=["tdl", "awgn"])
    with pytest.raises(ValueError, match="downsample must be in"):
        check_settings(downsample=65)


@pytest.mark.parametrize(("argv", "message"), [
    (["send", "x.png", "--psnr", "200"], "argument --psnr: psnr_db must be in [-20, 100], got 200.0"),
    (["send", "x.png", "--steps", "x"], "argument --steps: steps must be an integer, got 'x'"),
    (["send", "x.png", "--channel", "fading"], "argument --channel: channel must be one of authors-code, awgn"),
    (["send", "x.png", "--downsample", "0"], "argument --downsample: downsample must be in [1, 64], got 0"),
    (["evaluate", "--psnr", "1", "nan"], "argument --psnr: psnr_db must be in [-20, 100], got nan"),
    (["evaluate", "--guidance", "25"], "argument --guidance: guidance_scale must be in [0, 20], got 25.0"),
])
def test_the_command_line_checks_each_value_once_naming_it(argv, message, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert message in capsys.readouterr().err
