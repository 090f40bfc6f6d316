"""The sender's HTTP API against the real channel and receiver (in-process, real HTTP / gRPC).

A service is replaced only where a fault is injected: a dead channel or receiver is a
closed port.
"""

from __future__ import annotations

import json

import cv2
import httpx
import numpy as np
import pytest
from conftest import wait_result
from svc_helpers import TINY_RESOLUTION, scene_files

from gesco.link import encode_png
from gesco_net.probes import free_port


@pytest.fixture(scope="module")
def files():
    return scene_files(seed=2)


def post(url: str, files: dict[str, bytes], **form) -> httpx.Response:
    data = {k: str(v) for k, v in {"steps": 2, **form}.items()}
    return httpx.post(url + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()}, data=data, timeout=60)


def test_transmit_returns_202_with_id_budget_and_result_url(stack, files):
    before = len(stack.budget_lines())
    r = post(stack.sender_url, files, psnr_db=15, seed=7)
    assert r.status_code == 202, r.text
    body = r.json()
    b = body["budget"]
    assert body["status"] == "accepted" and body["segmented"] is False
    assert body["result_url"] == f"{stack.receiver_url}/result/{body['id']}"
    assert (b["height"], b["width"]) == TINY_RESOLUTION
    assert b["total_bits"] == b["payload_bits"] + b["header_bits"] and b["payload_bits"] > 0
    assert b["has_edges"] and b["png_bits"] > b["total_bits"] and b["psnr_db"] == 15.0
    assert body["settings"]["seed"] == 7 and body["settings"]["steps"] == 2
    assert all(v >= 0 for v in body["timings"].values())
    # the channel logged exactly this transmission, with the same bits
    lines = stack.budget_lines()
    assert len(lines) == before + 1
    logged = json.loads(lines[-1])
    assert logged["id"] == body["id"] and logged["total_bits"] == b["total_bits"]
    # and the receiver has the job (stored before the 202)
    assert stack.receiver.store.get(body["id"]) is not None
    done = wait_result(body["result_url"])
    assert done["status"] == "done", done


def test_downsample_and_codec_parameters(stack, files):
    r = post(stack.sender_url, files, downsample=4, codec="zlib", psnr_db=100)
    assert r.status_code == 202, r.text
    b = r.json()["budget"]
    assert b["codec"] == "downsample" and b["codec_params"] == {"factor": 4, "inner": "zlib"}
    assert b["channel_uses"] == b["maps"] * (TINY_RESOLUTION[0] // 4) * (TINY_RESOLUTION[1] // 4)


def test_segments_without_a_label_map(stack, files):
    class HalfRoadHalfSky:
        def predict_numpy(self, image):
            out = np.full(image.shape[:2], 7, np.uint8)
            out[: image.shape[0] // 2] = 23
            return out

    with stack.sender(inject_segmenter=HalfRoadHalfSky()) as url:
        r = post(url, {"image": files["image"]})
    assert r.status_code == 202, r.text
    assert r.json()["segmented"] is True and r.json()["budget"]["present_classes"] == [7, 23]


def test_the_reply_and_the_result_say_which_edge_map_was_sent(stack, files):
    """Uploaded instance map -> its edges; label map only -> edges derived from it; with
    GESCO_SENDER_DERIVE_EDGES=false -> none. The receiver's result repeats the sender's word."""
    uploaded = post(stack.sender_url, files, psnr_db=100)
    derived = post(stack.sender_url, {"image": files["image"], "label": files["label"]}, psnr_db=100)
    with stack.sender(derive_edges=False) as url:
        none = post(url, {"image": files["image"], "label": files["label"]}, psnr_db=100)
    for r, edges in ((uploaded, "uploaded"), (derived, "derived"), (none, "none")):
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["upload"]["edges"] == edges and body["budget"]["has_edges"] is (edges != "none")
        done = wait_result(body["result_url"])
        assert done["status"] == "done" and done["upload"]["edges"] == edges, done
    assert derived.json()["budget"]["maps"] == uploaded.json()["budget"]["maps"] == none.json()["budget"]["maps"] + 1


def test_no_label_and_no_segmenter_is_503(stack, files):
    r = post(stack.sender_url, {"image": files["image"]})
    assert r.status_code == 503 and "segmenter" in r.json()["detail"]


@pytest.mark.parametrize(
    "case, status, words",
    [
        ("not an image", 415, "not a PNG or JPEG"),
        ("empty file", 415, "empty"),
        ("corrupt PNG", 422, "corrupt PNG"),
        ("label as JPEG", 415, "must be a PNG"),
        ("label wrong shape", 422, "must match"),
        ("label unknown ids", 422, "outside the cityscapes class space"),
        ("instance without label", 422, "needs its label map"),
    ],
)
def test_bad_files(stack, files, case, status, words):
    up = dict(files)
    if case == "not an image":
        up["image"] = b"GIF89a this is not what we take"
    elif case == "empty file":
        up["image"] = b""
    elif case == "corrupt PNG":
        up["image"] = files["image"][:200]
    elif case == "label as JPEG":
        label = cv2.imdecode(np.frombuffer(files["label"], np.uint8), cv2.IMREAD_UNCHANGED)
        up["label"] = cv2.imencode(".jpg", label)[1].tobytes()
    elif case == "label wrong shape":
        up["label"] = encode_png(np.full((10, 10), 7, np.uint8))
    elif case == "label unknown ids":
        label = cv2.imdecode(np.frombuffer(files["label"], np.uint8), cv2.IMREAD_UNCHANGED)
        label[0, :5] = 200
        up["label"] = encode_png(label)
    elif case == "instance without label":
        del up["label"]
    before = len(stack.budget_lines())
    r = post(stack.sender_url, up)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert len(stack.budget_lines()) == before  # nothing was transmitted


def test_size_limits_are_413(stack, files):
    with stack.sender(max_upload_bytes=2048) as url:
        r = post(url, {"image": files["image"] + b"\0" * 4096})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
    with stack.sender(max_image_pixels=1000) as url:
        r = post(url, files)
        assert r.status_code == 413 and "pixels" in r.json()["detail"]


@pytest.mark.parametrize(
    "form, field",
    [
        ({"psnr_db": "1000"}, "psnr_db"),
        ({"psnr_db": "-80"}, "psnr_db"),
        ({"psnr_db": "ten"}, "psnr_db"),
        ({"psnr_db": "nan"}, "psnr_db"),
        ({"steps": "0"}, "steps"),
        ({"sampler": "euler"}, "sampler"),
        ({"channel": "fading"}, "channel"),
        ({"downsample": "0"}, "downsample"),
        ({"guidance_scale": "inf"}, "guidance_scale"),
        ({"seed": "-1"}, "seed"),
    ],
)
def test_bad_parameters_are_422(stack, files, form, field):
    r = post(stack.sender_url, files, **form)
    assert r.status_code == 422, r.text
    assert any(field in err["loc"] for err in r.json()["detail"])


def test_unknown_form_field_is_422(stack, files):
    r = post(stack.sender_url, files, psnr=5)  # a typo of psnr_db must not pass silently
    assert r.status_code == 422 and "psnr" in r.json()["detail"]


def test_authors_code_preset_rejects_psnr_outside_its_table(stack, files):
    r = post(stack.sender_url, files, channel="authors-code", psnr_db=12)
    assert r.status_code == 422 and "authors-code" in r.json()["detail"]
    assert post(stack.sender_url, files, channel="authors-code", psnr_db=10).status_code == 202


def test_rayleigh_channel_end_to_end_with_parameters_in_the_budget_log(stack, files):
    r = post(stack.sender_url, files, channel="rayleigh", channel_params='{"block_length": 64, "equalizer": "zf"}',
             psnr_db=20, seed=3)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["budget"]["channel"] == "rayleigh"
    assert body["budget"]["channel_params"] == {"block_length": 64, "equalizer": "zf"}
    assert body["settings"]["channel_params"] == {"block_length": 64, "equalizer": "zf"}
    logged = json.loads(stack.budget_lines()[-1])
    assert logged["id"] == body["id"] and logged["channel"] == "rayleigh"
    assert logged["channel_params"] == {"block_length": 64, "equalizer": "zf"}
    done = wait_result(body["result_url"])
    assert done["status"] == "done"
    assert done["settings"]["channel"] == "rayleigh"
    assert done["settings"]["channel_params"] == {"block_length": "64", "equalizer": "zf"}  # as sent (text)
    # the defaults are logged when no parameters are given
    r = post(stack.sender_url, files, channel="rayleigh-nocsi", psnr_db=20)
    assert r.status_code == 202, r.text
    assert json.loads(stack.budget_lines()[-1])["channel_params"] == {"block_length": 1024}


@pytest.mark.parametrize(
    "form, words",
    [
        ({"channel": "fading"}, ["awgn", "rayleigh", "rayleigh-nocsi", "tdl"]),  # the list of models
        ({"channel": "rayleigh", "channel_params": '{"block_length": -1}'}, ["block_length"]),
        ({"channel": "rayleigh", "channel_params": '{"colour": 1}'}, ["colour", "Parameters of 'rayleigh'"]),
        ({"channel": "rayleigh-nocsi", "channel_params": '{"equalizer": "zf"}'}, ["equalizer"]),
        ({"channel": "tdl", "channel_params": '{"model": "Z"}'}, ["model"]),
        ({"channel": "awgn", "channel_params": "[1, 2]"}, ["JSON object"]),
        ({"channel": "awgn", "channel_params": "{block_length: 3"}, ["JSON object"]),
    ],
)
def test_bad_channel_settings_are_422_with_what_is_known(stack, files, form, words):
    before = len(stack.budget_lines())
    r = post(stack.sender_url, files, **form)
    assert r.status_code == 422, r.text
    text = json.dumps(r.json()["detail"])
    for w in words:
        assert w in text, (w, text)
    assert len(stack.budget_lines()) == before  # nothing was sent


def test_channel_down_is_503(stack, files):
    with stack.sender(channel_address=f"127.0.0.1:{free_port()}", channel_timeout_s=5) as url:
        r = post(url, files)
    assert r.status_code == 503
    assert "channel service" in r.json()["detail"] and "unavailable" in r.json()["detail"]


def test_receiver_down_is_503_and_nothing_is_stored(stack, files, tmp_path):
    from channel.server import create_server
    from channel.settings import ChannelSettings

    log = tmp_path / "budget.jsonl"
    dead = create_server(ChannelSettings(port=0, receiver_address=f"127.0.0.1:{free_port()}", budget_log=log)).start()
    try:
        counts = stack.receiver.store.counts()
        with stack.sender(channel_address=dead.address) as url:
            r = post(url, files)
        assert r.status_code == 503
        assert "receiver" in r.json()["detail"] and "unavailable" in r.json()["detail"]
        assert not log.exists() or log.read_text() == ""  # no budget line for an undelivered frame
        # no job was stored (compare totals: an earlier test's job may finish meanwhile, moving running -> done)
        assert sum(stack.receiver.store.counts().values()) == sum(counts.values())
    finally:
        dead.stop()


def test_healthz_and_openapi_document_every_field(stack):
    h = httpx.get(stack.sender_url + "/healthz").json()
    assert h["status"] == "ok" and h["resolution"] == list(TINY_RESOLUTION)
    schema = httpx.get(stack.sender_url + "/openapi.json").json()
    comps = schema["components"]["schemas"]
    for model in ("TransmitParams", "TransmitAccepted", "BitBudget", "SenderTimings"):
        for name, prop in comps[model]["properties"].items():
            described = "description" in prop or "$ref" in prop
            assert described, f"{model}.{name} has no description"
    body = schema["paths"]["/transmit"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    body = comps[body["$ref"].rsplit("/", 1)[-1]]
    for name in ("image", "label", "instance"):
        assert body["properties"][name].get("description"), name
    responses = schema["paths"]["/transmit"]["post"]["responses"]
    assert {"202", "413", "415", "422", "503"} <= set(responses)


def test_loads_a_segmenter_checkpoint_and_reports_a_missing_one(stack, files, tmp_path):
    from gesco.segment import SegmenterConfig, SegmenterNet
    from gesco.segment.checkpoint import SegmenterCard, save_checkpoint

    config = SegmenterConfig(widths=(8, 16), stem_convs=1, context_dilations=(1,))
    save_checkpoint(tmp_path / "seg", SegmenterNet(config),
                    SegmenterCard(model=config, class_space="cityscapes", resolution=TINY_RESOLUTION))
    with stack.sender(load_segmenter=True, segmenter=str(tmp_path / "seg")) as url:
        assert httpx.get(url + "/healthz").json()["segmenter"] == "ready"
        r = post(url, {"image": files["image"]})
    assert r.status_code == 202, r.text
    assert r.json()["segmented"] is True and r.json()["timings"]["segment_s"] > 0
    with stack.sender(load_segmenter=True, segmenter=str(tmp_path / "missing")) as url:
        health = httpx.get(url + "/healthz").json()["segmenter"]
        assert "CheckpointError" in health and "missing" in health
        r = post(url, {"image": files["image"]})
        assert r.status_code == 503 and "missing" in r.json()["detail"]


def test_appearance_repeat_is_chosen_by_the_sender_and_counted(stack, files):
    """Left out, ``appearance_repeat`` is chosen from the PSNR and channel (gesco.appearance.choose_repeat);
    the budget shows and counts the chosen repetition; a fading channel needs it given (422, named)."""
    r = post(stack.sender_url, files, psnr_db=1, appearance="mean", appearance_bits=6)
    assert r.status_code == 202, r.text
    b = r.json()["budget"]
    assert b["appearance"]["repeat"] > 1 and b["appearance_bits"] == 18  # 1 dB: one copy is ~20 % wrong
    assert b["appearance_channel_uses"] == 18 * b["appearance"]["repeat"]
    assert json.loads(stack.budget_lines()[-1])["appearance_channel_uses"] == b["appearance_channel_uses"]
    given = post(stack.sender_url, files, psnr_db=1, appearance="mean", appearance_bits=6, appearance_repeat=3)
    assert given.status_code == 202 and given.json()["budget"]["appearance"]["repeat"] == 3
    fading = post(stack.sender_url, files, psnr_db=10, appearance="mean", channel="rayleigh")
    assert fading.status_code == 422
    assert "cannot be chosen for channel 'rayleigh'" in fading.json()["detail"]
