"""The viewer's HTTP side (no browser): page files, configuration, history API, label
colouring, Content-Security-Policy, no external URLs, and the sender's CORS for the page.
The browser itself drives the page in test_viewer_browser.py.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np
import pytest
from conftest import wait_result
from svc_helpers import scene_files

from gesco.link import colour_labels, encode_png
from gesco.semantics.classes import get_class_space
from receiver.times import iso_time
from receiver.viewer import FILES_DIR, STATIC_FILES, content_security_policy
from sender.cors import viewer_origins

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def send(stack, seed: int, psnr: float = 10.0) -> dict:
    files = scene_files(seed=seed)
    r = httpx.post(stack.sender_url + "/transmit", files={k: (f"{k}.png", files[k]) for k in ("image", "label")},
                   data={"psnr_db": str(psnr), "sampler": "ddim", "steps": "2", "seed": str(seed)}, timeout=60)
    assert r.status_code == 202, r.text
    return r.json()


def test_page_and_files_are_served_with_a_strict_policy(stack):
    page = httpx.get(stack.receiver_url + "/viewer")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert f"connect-src 'self' {stack.sender_url}" in csp  # the sender, for POST /transmit
    for name, media_type in STATIC_FILES.items():
        r = httpx.get(f"{stack.receiver_url}/viewer/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media_type), name
        assert r.content == (FILES_DIR / name).read_bytes()
    for bad in ("index.html", "..%2Fviewer.py", "nope.js"):
        assert httpx.get(f"{stack.receiver_url}/viewer/static/{bad}").status_code == 404, bad


def test_served_page_fetches_nothing_from_outside(stack):
    """No http(s) URL to anything but loopback in what the browser gets; no inline script."""
    texts = [httpx.get(stack.receiver_url + "/viewer").text]
    texts += [httpx.get(f"{stack.receiver_url}/viewer/static/{n}").text for n in STATIC_FILES if not n.endswith(".png")]
    texts.append(httpx.get(stack.receiver_url + "/viewer/config.json").text)
    for text in texts:
        for url in re.findall(r"https?://[^\s\"'`<>)]+", text):
            assert urlsplit(url).hostname in LOOPBACK, url
    page = texts[0]
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/viewer/static/viewer.js" defer>']
    assert not re.findall(r"<[^>]*\son\w+\s*=", page, re.IGNORECASE)  # no inline event handlers
    assert "style=" not in page
    assert "innerHTML" not in texts[1] and "insertAdjacentHTML" not in texts[1] and "document.write" not in texts[1]


def test_config_names_the_sender_and_the_model(stack):
    cfg = httpx.get(stack.receiver_url + "/viewer/config.json").json()
    assert cfg["sender_url"] == stack.sender_url
    assert cfg["class_space"] == "cityscapes" and cfg["resolution"] == [32, 64]
    space = get_class_space("cityscapes")
    assert [c["color"] for c in cfg["classes"]] == [list(c) for c in space.colors]
    assert "ddim" in cfg["samplers"] and "awgn" in cfg["channels"]
    assert cfg["compare_psnrs_db"] == [1.0, 5.0, 10.0, 20.0, 100.0]
    # the appearance side channel's form fields, from their declaration (off first: the paper's setting)
    assert cfg["appearance_modes"] == ["off", "mean", "classes"]
    assert (cfg["appearance_bits_default"], cfg["appearance_bits_range"]) == (6, [1, 8])
    assert (cfg["appearance_repeat_default"], cfg["appearance_repeat_range"]) == (0, [0, 16])


def test_results_lists_newest_first_with_paging(stack):
    ids = [send(stack, seed)["id"] for seed in (21, 22, 23)]
    for i in ids:
        wait_result(f"{stack.receiver_url}/result/{i}")
    listed = httpx.get(stack.receiver_url + "/results", params={"limit": 500}).json()["results"]
    positions = [next(k for k, r in enumerate(listed) if r["id"] == i) for i in ids]
    assert positions == sorted(positions, reverse=True)  # newest first
    newest = listed[positions[-1]]
    doc = httpx.get(newest["url"]).json()
    assert doc["id"] == ids[-1] and newest["total_bits"] == doc["budget"]["total_bits"]
    assert newest["created_at"] == doc["created_at"]  # the history and the result write times alike
    assert newest["sampler"] == "ddim" and newest["steps"] == 2 and newest["status"] == "done"
    page = httpx.get(stack.receiver_url + "/results", params={"limit": 1, "before": ids[-1]}).json()["results"]
    assert [r["id"] for r in page] == [ids[-2]]
    assert httpx.get(stack.receiver_url + "/results", params={"before": "no-such-job"}).status_code == 404
    assert httpx.get(stack.receiver_url + "/results", params={"limit": 0}).status_code == 422


def test_label_map_is_colour_coded_with_the_class_palette(stack):
    label = np.zeros((6, 9), np.uint8)
    label[2:, 3:] = 26  # car
    r = httpx.post(stack.receiver_url + "/viewer/label.png", files={"label": ("l.png", encode_png(label))})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(rgb, colour_labels(label.astype(np.int64), get_class_space("cityscapes")))
    # 16-bit maps too
    ok, png16 = cv2.imencode(".png", label.astype(np.uint16))
    r16 = httpx.post(stack.receiver_url + "/viewer/label.png", files={"label": ("l.png", png16.tobytes())})
    assert r16.status_code == 200 and r16.content == r.content


@pytest.mark.parametrize("data, status, words", [
    (b"not a png", 415, "label: not a PNG"),
    (None, 422, "label:"),  # ids outside the class space
])
def test_bad_label_maps_are_refused_with_the_reason(stack, data, status, words):
    if data is None:
        data = encode_png(np.full((4, 4), 200, np.uint8))
    r = httpx.post(stack.receiver_url + "/viewer/label.png", files={"label": ("l.png", data)})
    assert r.status_code == status and r.json()["detail"].startswith(words), r.text


def test_sender_lets_the_receivers_page_read_its_replies(stack):
    """The page's POST is cross-origin: the sender allows the receiver's origin (and its loopback aliases) only."""
    port = urlsplit(stack.receiver_url).port
    files = {"image": ("x.png", b"junk")}
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        r = httpx.post(stack.sender_url + "/transmit", files=files, headers={"Origin": origin})
        assert r.status_code == 415 and r.headers.get("access-control-allow-origin") == origin
    for origin in ("http://evil.example", f"http://127.0.0.1:{port + 1}"):
        r = httpx.post(stack.sender_url + "/transmit", files=files, headers={"Origin": origin})
        assert "access-control-allow-origin" not in r.headers, origin


def test_viewer_origins_and_policy_refuse_non_http_urls():
    assert viewer_origins("http://127.0.0.1:8002/") == [
        "http://localhost:8002", "http://127.0.0.1:8002", "http://[::1]:8002"]
    assert viewer_origins("https://results.lab.org") == ["https://results.lab.org"]
    for bad in ("ftp://x", "127.0.0.1:8002", ""):
        with pytest.raises(ValueError):
            viewer_origins(bad)
        with pytest.raises(ValueError):
            content_security_policy(bad)


def test_times_are_iso_8601_utc_to_the_millisecond():
    assert iso_time(0.25) == "1970-01-01T00:00:00.250+00:00"
    assert iso_time(1_767_225_600.0) == "2026-01-01T00:00:00.000+00:00"
    assert iso_time(None) is None
