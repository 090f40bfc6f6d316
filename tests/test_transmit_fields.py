"""Every representation of a transmission's settings takes its defaults, ranges and meanings
from the one table, gesco.transmit_fields.FIELDS."""

from __future__ import annotations

import dataclasses

import pytest

from gesco.cli import build_parser
from gesco.defaults import GUIDED_SAMPLER, GUIDED_STEPS
from gesco.diffusion.pipeline import SamplingSettings
from gesco.errors import GescoInputError
from gesco.evaluate.methods import METHODS
from gesco.link import TransmitSettings
from gesco.transmit_fields import FIELDS, check_settings, default
from receiver.app import JobSettings
from sender.schemas import TransmitParams


def _bounds(field_info) -> tuple:
    ge = next((m.ge for m in field_info.metadata if hasattr(m, "ge")), None)
    le = next((m.le for m in field_info.metadata if hasattr(m, "le")), None)
    return ge, le


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_sender_form_link_settings_and_job_record_follow_the_table(name):
    spec = FIELDS[name]
    form = TransmitParams.model_fields[name]
    assert form.default == spec.default
    if spec.ge is not None:
        assert _bounds(form) == (spec.ge, spec.le)
    core = {f.name: f.default for f in dataclasses.fields(TransmitSettings)}
    assert core[name] == spec.default
    assert JobSettings.model_fields[name].description == spec.description


def test_cli_flags_default_to_the_table():
    args = build_parser().parse_args(["send", "scene.png"])
    assert (args.psnr, args.channel, args.sampler, args.steps, args.guidance, args.seed) == tuple(
        default(n) for n in ("psnr_db", "channel", "sampler", "steps", "guidance_scale", "seed"))
    assert args.no_fds is (not default("fds"))
    # the evaluation's rows sample the guided model by default (its ours-fast row: the receiver's defaults)
    ev = build_parser().parse_args(["evaluate"])
    assert (ev.sampler, ev.steps, ev.guidance) == (GUIDED_SAMPLER, GUIDED_STEPS, default("guidance_scale"))
    assert METHODS["ours-fast"].sampler == default("sampler") and METHODS["ours-fast"].steps == default("steps")


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
    check_settings(psnr_db=10.0, sampler="ddim", steps=5)
    with pytest.raises(ValueError, match="psnr_db must be in"):
        check_settings(psnr_db=200.0)
    with pytest.raises(ValueError, match="psnr_db must be in"):
        check_settings(psnr_db=float("nan"))
    with pytest.raises(ValueError, match="sampler must be one of"):
        check_settings(sampler="euler")
