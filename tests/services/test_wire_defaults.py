"""Unset wire fields mean the declared default (gesco.transmit_fields), through the real services.

A raw gRPC client (the generated ``ChannelStub``, not gesco's sender) sends frames that leave
one ``TransmitParams`` field unset at a time; the receiver's job record must hold the declared
default of that field (and the channel must have used it). A receiver whose model card
recommends a sampling (as an imported authors' model's does) applies it to frames, ``/transmit``
forms and ``gesco send`` calls that leave sampler / steps / guidance unset.
"""

from __future__ import annotations

import copy

import grpc
import httpx
import pytest
from conftest import run_stack, wait_result
from svc_helpers import TINY_RESOLUTION, scene_files

from gesco.data.synthetic import generate_scene
from gesco.link import TransmitSettings, encode_image_frame
from gesco.semantics.classes import get_class_space
from gesco.transmit_fields import FIELDS, RECEIVER_DEFAULTS, WIRE_TRANSMIT, default
from gesco.wire import ACK_ACCEPTED
from gesco_net import gesco_pb2_grpc
from gesco_net.cli import main as cli

SPACE = get_class_space("cityscapes")
#: values other than the defaults, each a valid setting for the tiny model
OTHER = {"psnr_db": 4.0, "channel": "rayleigh", "sampler": "ddim", "steps": 2, "guidance_scale": 1.5, "seed": 5,
         "fds": False}
#: what the card of the "imported" model recommends (tiny model: few steps)
RECOMMENDED = {"sampler": "dpmpp-2m-sde", "steps": 3, "guidance_scale": 1.25}
FILES = {k: (f"{k}.png", v) for k, v in scene_files().items()}


def frame_without(field: str | None, frame_id: str):
    s = generate_scene(21, 48, 96)
    frame, _ = encode_image_frame(s.image, s.label, s.instance, space=SPACE, resolution=TINY_RESOLUTION,
                                  frame_id=frame_id, transmit=TransmitSettings(**OTHER))
    if field is not None:
        frame.transmit.ClearField(field)
    return frame


def raw_transmit(stack, frame):
    with grpc.insecure_channel(stack.channel_address) as ch:
        return gesco_pb2_grpc.ChannelStub(ch).Transmit(frame, timeout=30)


@pytest.mark.parametrize("field", [n for n, s in FIELDS.items() if s.wire == WIRE_TRANSMIT and s.kind is not dict])
def test_a_raw_client_leaving_a_field_unset_gets_its_declared_default(stack, field):
    job_id = f"unset-{field.replace('_', '-')}"
    ack = raw_transmit(stack, frame_without(field, job_id))
    assert ack.status == ACK_ACCEPTED, ack.message
    doc = httpx.get(f"{stack.receiver_url}/result/{job_id}").json()
    for name, value in OTHER.items():
        assert doc["settings"][name] == (default(name) if name == field else value), name
    assert doc["budget"]["psnr_db"] == (default("psnr_db") if field == "psnr_db" else OTHER["psnr_db"])
    assert doc["budget"]["channel"] == (default("channel") if field == "channel" else OTHER["channel"])


@pytest.fixture(scope="module")
def recommending_stack(tmp_path_factory, tiny_generator):
    """The services with a receiver whose model card recommends :data:`RECOMMENDED`."""
    from gesco.diffusion.pipeline import SemanticGenerator

    card = copy.deepcopy(tiny_generator.card)
    card.conditioning = dict(card.conditioning or {}, recommended_sampling=RECOMMENDED)
    gen = SemanticGenerator(tiny_generator.model, card, device="cpu")
    with run_stack(tmp_path_factory.mktemp("recommending"), gen) as s:
        yield s


def test_unset_sampling_takes_the_receivers_model_card(recommending_stack):
    stack = recommending_stack
    health = httpx.get(f"{stack.receiver_url}/healthz").json()
    assert health["model"]["default_sampling"] == RECOMMENDED
    config = httpx.get(f"{stack.receiver_url}/viewer/config.json").json()  # the viewer pre-fills them
    assert (config["default_sampler"], config["default_steps"]) == (RECOMMENDED["sampler"], RECOMMENDED["steps"])
    # a raw client leaving all three unset
    frame = frame_without(None, "card-raw")
    for name in RECEIVER_DEFAULTS:
        frame.transmit.ClearField(name)
    assert raw_transmit(stack, frame).status == ACK_ACCEPTED
    doc = httpx.get(f"{stack.receiver_url}/result/card-raw").json()
    assert {n: doc["settings"][n] for n in RECOMMENDED} == RECOMMENDED
    # a form without them: the sender leaves them unset, its reply does not claim a value
    r = httpx.post(stack.sender_url + "/transmit", files=FILES, data={"id": "card-form", "psnr_db": "20"})
    assert r.status_code == 202, r.text
    assert not set(RECEIVER_DEFAULTS) & set(r.json()["settings"])
    doc = wait_result(r.json()["result_url"])
    assert doc["status"] == "done", doc
    assert {n: doc["settings"][n] for n in RECOMMENDED} == RECOMMENDED and doc["settings"]["psnr_db"] == 20
    # a form that sets one: that one wins, the others still come from the card
    r = httpx.post(stack.sender_url + "/transmit", files=FILES, data={"id": "card-steps", "steps": "2"})
    assert r.status_code == 202, r.text
    doc = httpx.get(r.json()["result_url"]).json()
    assert doc["settings"]["steps"] == 2 and doc["settings"]["sampler"] == RECOMMENDED["sampler"]


def test_gesco_send_without_sampling_flags_gets_the_card_and_explicit_flags_win(recommending_stack, tmp_path,
                                                                                capsys):
    stack = recommending_stack
    for name, data in scene_files().items():
        (tmp_path / f"{name}.png").write_bytes(data)
    base = ["send", str(tmp_path / "image.png"), "--label", str(tmp_path / "label.png"), "--sender", stack.sender_url,
            "--json"]
    assert cli(base + ["--out", str(tmp_path / "a.png")]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)["result"]
    assert {n: doc["settings"][n] for n in RECOMMENDED} == RECOMMENDED
    assert cli(base + ["--out", str(tmp_path / "b.png"), "--sampler", "ddim", "--steps", "2", "--guidance", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)["result"]
    assert (doc["settings"]["sampler"], doc["settings"]["steps"], doc["settings"]["guidance_scale"]) == ("ddim", 2, 1.0)
