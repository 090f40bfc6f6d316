"""What the sender does with real uploads, end to end through the real channel and receiver:
an image the segmenter does not recognise is flagged (202 reply, result JSON), and an upload
of another aspect ratio is centre-cropped or letterboxed, and says so."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from conftest import wait_result
from svc_helpers import scene_files

from gesco.link import encode_png


@pytest.fixture(scope="module")
def shipped_segmenter():
    from gesco.segment import Segmenter

    return Segmenter.load()


def _post(url: str, files: dict[str, tuple[str, bytes]]) -> httpx.Response:
    return httpx.post(url + "/transmit", files=files, data={"steps": "2"}, timeout=60)


def _portrait_jpeg() -> bytes:
    from matplotlib import cbook

    return open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), "rb").read()


def test_a_photo_is_flagged_out_of_domain_in_the_reply_and_the_result(stack, shipped_segmenter):
    with stack.sender(inject_segmenter=shipped_segmenter) as url:
        r = _post(url, {"image": ("hopper.jpg", _portrait_jpeg())})
    assert r.status_code == 202, r.text  # still transmitted: nothing accepted is lost
    body = r.json()
    up = body["upload"]
    assert up["segmented"] and up["domain_scored"] and up["out_of_domain"]
    assert up["domain_score"] < up["domain_threshold"] == pytest.approx(0.85)
    assert any("does not look like a street scene" in w and "label map" in w for w in body["warnings"])
    assert up["source_size"] == [600, 512] and up["aspect"] == "crop" and up["aspect_adjusted"]
    done = wait_result(body["result_url"])
    assert done["status"] == "done", done
    assert done["upload"] == up and done["warnings"] == body["warnings"]
    assert done["progress"] is None  # finished jobs carry no progress


def test_a_synthetic_street_is_in_domain(stack, shipped_segmenter):
    with stack.sender(inject_segmenter=shipped_segmenter) as url:
        r = _post(url, {"image": ("scene.png", scene_files(seed=3)["image"])})
    assert r.status_code == 202, r.text
    up = r.json()["upload"]
    assert up["domain_scored"] and not up["out_of_domain"] and up["domain_score"] >= 0.85
    assert not up["aspect_adjusted"] and r.json()["warnings"] == []


def test_a_label_map_upload_is_not_scored(stack):
    files = scene_files(seed=5)
    r = _post(stack.sender_url, {k: (f"{k}.png", v) for k, v in files.items()})
    up = r.json()["upload"]
    assert not up["segmented"] and not up["domain_scored"] and up["domain_score"] is None
    assert not up["out_of_domain"]


def _square_upload() -> dict[str, tuple[str, bytes]]:
    image = np.zeros((512, 512, 3), np.uint8)
    image[128:384] = (90, 90, 90)
    label = np.full((512, 512), 23, np.uint8)  # sky
    label[256:] = 7  # road
    return {"image": ("sq.png", encode_png(image)), "label": ("sq_label.png", encode_png(label))}


def test_a_square_upload_is_centre_cropped_and_says_so(stack):
    r = _post(stack.sender_url, _square_upload())
    assert r.status_code == 202, r.text
    up = r.json()["upload"]
    assert up["aspect"] == "crop" and up["aspect_adjusted"]
    assert up["source_size"] == [512, 512] and up["source_box"] == [128, 0, 384, 512]
    assert any("centre-cropped" in w for w in r.json()["warnings"])
    assert wait_result(r.json()["result_url"])["upload"]["source_box"] == [128, 0, 384, 512]


def test_letterbox_is_a_setting(stack):
    with stack.sender(aspect="letterbox") as url:
        assert httpx.get(url + "/healthz").json()["aspect"] == "letterbox"
        r = _post(url, _square_upload())
    assert r.status_code == 202, r.text
    up = r.json()["upload"]
    h, w = r.json()["budget"]["height"], r.json()["budget"]["width"]
    assert up["aspect"] == "letterbox" and up["content_box"] == [0, (w - h) // 2, h, (w - h) // 2 + h]
    assert 0 in r.json()["budget"]["present_classes"]  # the bars are sent as label 0
    assert any("letterboxed" in w for w in r.json()["warnings"])


def test_a_bad_aspect_setting_is_refused():
    from pydantic import ValidationError

    from sender.settings import SenderSettings

    with pytest.raises(ValidationError, match="aspect"):
        SenderSettings(aspect="squash")
