"""Hardening of the sender's HTTP API (issue 14): each test is a failure found on the old main.

Body limit on the bytes read (chunked uploads), decoded-size budget before decoding,
a cap on concurrent encodes, phone photos with EXIF orientation, repeated / empty form
fields, truncated 422 echoes, idempotent retries with a client id, a full receiver
queue answered 503 + Retry-After.
"""

from __future__ import annotations

import json
import struct
import threading
import zlib

import httpx
import numpy as np
import pytest
from conftest import wait_result
from svc_helpers import jpeg_with_orientation, scene_files


@pytest.fixture(scope="module")
def files():
    return scene_files(seed=3)


def post(url: str, files: dict[str, bytes], **form) -> httpx.Response:
    data = {k: str(v) for k, v in {"steps": 2, **form}.items()}
    return httpx.post(url + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()}, data=data, timeout=60)


def multipart(files: dict[str, bytes], form: dict[str, str], boundary: str = "gescoBOUNDARY") -> bytes:
    parts = []
    for name, value in form.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, data in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_chunked_body_over_the_limit_is_413(stack, files):
    body = multipart(files, {"steps": "2"}) + b"x" * (2 * 1024 * 1024)  # an epilogue parsers skip
    headers = {"content-type": "multipart/form-data; boundary=gescoBOUNDARY"}

    def chunks():
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    with stack.sender(max_upload_bytes=64 * 1024) as url:  # body limit 3 x 64 KiB + 64 KiB
        with_length = httpx.post(url + "/transmit", content=body, headers=headers, timeout=60)
        assert with_length.status_code == 413, with_length.text
        chunked = httpx.post(url + "/transmit", content=chunks(), headers=headers, timeout=60)
        assert chunked.status_code == 413, chunked.text
        assert "limit" in chunked.json()["detail"]
        # a small chunked upload still works
        small = multipart(files, {"steps": "2"})
        ok = httpx.post(url + "/transmit", content=iter([small[:1000], small[1000:]]), headers=headers, timeout=60)
        assert ok.status_code == 202, ok.text


def big_png(height: int, width: int, channels: int = 4, depth: int = 16) -> bytes:
    """A valid, highly compressed PNG of zeros (written row by row: nothing big in memory)."""
    colour = {1: 0, 3: 2, 4: 6}[channels]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + width * channels * depth // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decoded_size_budget_refuses_amplifying_uploads_before_decoding(stack, monkeypatch):
    image = big_png(4000, 4000)  # 16-bit RGBA: 128 MB of samples from a ~130 KB file
    label = big_png(4000, 4000, channels=1)
    assert len(image) < 300_000
    import gesco.uploads

    decoded = []
    real = gesco.uploads.cv2.imdecode
    monkeypatch.setattr(gesco.uploads.cv2, "imdecode", lambda *a: decoded.append(1) or real(*a))
    r = post(stack.sender_url, {"image": image, "label": label})
    assert r.status_code == 413, r.text
    assert "once decoded" in r.json()["detail"] and "16 bits" in r.json()["detail"]
    assert decoded == []


def test_concurrent_encodes_are_capped_with_503_retry_after(stack, files):
    release = threading.Event()
    entered = threading.Event()

    class SlowSegmenter:
        def predict_numpy(self, image):
            entered.set()
            release.wait(20)
            return np.full(image.shape[:2], 7, np.uint8)

    with stack.sender(inject_segmenter=SlowSegmenter(), max_concurrent_encodes=1, encode_wait_s=0.3,
                      retry_after_s=7) as url:
        first = {}
        t = threading.Thread(target=lambda: first.setdefault("r", post(url, {"image": files["image"]})))
        t.start()
        assert entered.wait(20)
        second = post(url, {"image": files["image"]})
        release.set()
        t.join(30)
    assert second.status_code == 503 and second.headers["retry-after"] == "7", second.text
    assert "busy" in second.json()["detail"]
    assert first["r"].status_code == 202, first["r"].text


def test_phone_photo_with_exif_orientation_is_accepted_upright(stack):
    """A camera stores the pixels sideways / upside down and says so in EXIF: the sender must
    turn them upright before fitting and segmenting. The upright photo is a 64x128 landscape of
    four coloured quadrants; each JPEG stores it turned the way its orientation tag undoes
    (rotations written here with numpy, independently of gesco.image_header), so the sender
    must see the same upright quadrants, at the same source size, for every orientation."""
    quadrants = {(0, 0): (220, 30, 30), (0, 1): (30, 220, 30), (1, 0): (30, 30, 220), (1, 1): (230, 230, 230)}
    upright = np.zeros((64, 128, 3), np.uint8)
    for (qy, qx), colour in quadrants.items():
        upright[qy * 32:(qy + 1) * 32, qx * 64:(qx + 1) * 64] = colour
    # EXIF 3: shown rotated 180 degrees; 6: shown rotated 90 degrees clockwise; 8: counter-clockwise
    stored = {1: upright, 3: np.rot90(upright, 2), 6: np.rot90(upright, 1), 8: np.rot90(upright, -1)}

    class Recorder:
        images: list[np.ndarray] = []

        def predict_numpy(self, image):
            self.images.append(image.copy())
            return np.full(image.shape[:2], 7, np.uint8)

    rec = Recorder()
    with stack.sender(inject_segmenter=rec, height=32, width=64) as url:
        for orientation, pixels in stored.items():
            assert pixels.shape[:2] == ((64, 128) if orientation in (1, 3) else (128, 64))
            r = post(url, {"image": jpeg_with_orientation(pixels, orientation)})
            assert r.status_code == 202, (orientation, r.text)
            upload = r.json()["upload"]
            assert upload["source_size"] == [64, 128] and not upload["aspect_adjusted"], (orientation, upload)
            seen = rec.images[-1]
            assert seen.shape == (32, 64, 3), (orientation, seen.shape)
            for (qy, qx), colour in quadrants.items():  # the centre of each quadrant, away from JPEG's blurred edges
                centre = seen[qy * 16 + 4:qy * 16 + 12, qx * 32 + 8:qx * 32 + 24].reshape(-1, 3).mean(0)
                assert np.abs(centre - colour).max() < 25, (orientation, (qy, qx), centre.round(), colour)
    assert len(rec.images) == 4


def test_repeated_and_empty_form_fields_are_422(stack, files):
    up = {k: (f"{k}.png", v) for k, v in files.items()}
    r = httpx.post(stack.sender_url + "/transmit", files=up, data={"steps": "2", "psnr_db": ["5", "30"]}, timeout=60)
    assert r.status_code == 422 and "more than once" in r.json()["detail"] and "psnr_db" in r.json()["detail"]
    r = httpx.post(stack.sender_url + "/transmit", files=up, data={"steps": "2", "psnr_db": ""}, timeout=60)
    assert r.status_code == 422 and "empty" in r.json()["detail"], r.text
    r = httpx.post(stack.sender_url + "/transmit", files=[("image", ("a.png", files["image"])),
                                                          ("image", ("b.png", files["image"]))],
                   data={"steps": "2"}, timeout=60)
    assert r.status_code == 422 and "more than once" in r.json()["detail"]


def test_422_replies_do_not_echo_huge_inputs(stack, files):
    huge = "9" * 100_000
    r = post(stack.sender_url, files, psnr_db=huge)
    assert r.status_code == 422
    assert len(r.content) < 2000 and huge not in r.text
    r = httpx.get(stack.receiver_url + "/result/" + "x" * 5000, timeout=10)
    assert r.status_code == 404 and len(r.content) < 2000


def test_client_id_makes_retries_idempotent(stack, files):
    before = [json.loads(line)["id"] for line in stack.budget_lines()]
    r1 = post(stack.sender_url, files, id="client-chosen-1", psnr_db=12)
    assert r1.status_code == 202, r1.text
    r2 = post(stack.sender_url, files, id="client-chosen-1", psnr_db=12)
    assert r2.status_code == 202, r2.text
    assert r1.json()["id"] == r2.json()["id"] == "client-chosen-1"
    assert r1.json()["budget"]["total_bits"] == r2.json()["budget"]["total_bits"]
    ids = [json.loads(line)["id"] for line in stack.budget_lines()]
    assert ids.count("client-chosen-1") == 1 and len(ids) == len(before) + 1
    other = post(stack.sender_url, files, id="client-chosen-1", psnr_db=20)  # same id, other input
    assert other.status_code == 409, other.text
    assert wait_result(r1.json()["result_url"])["status"] == "done"
    for bad in ("x\n", "../x", "a" * 200):
        r = post(stack.sender_url, files, id=bad)
        assert r.status_code == 422, (bad, r.text)


def test_retry_after_a_lost_reply_returns_the_stored_job(stack, files, monkeypatch):
    service = stack.channel.service
    real = service.budget_log.append_once
    calls = []

    def crash_first(record):
        calls.append(record["id"])
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(record)

    monkeypatch.setattr(service.budget_log, "append_once", crash_first)
    r1 = post(stack.sender_url, files, id="lost-reply-1")
    assert r1.status_code >= 500  # the client does not know whether the job was stored
    assert stack.receiver.store.get("lost-reply-1") is not None
    r2 = post(stack.sender_url, files, id="lost-reply-1")
    assert r2.status_code == 202 and r2.json()["id"] == "lost-reply-1", r2.text
    ids = [json.loads(line)["id"] for line in stack.budget_lines()]
    assert ids.count("lost-reply-1") == 1


def test_full_receiver_queue_is_503_with_retry_after_and_nothing_stored(tmp_path, tiny_generator, files):
    from svc_helpers import TINY_RESOLUTION, UvicornThread

    from channel.server import create_server
    from channel.settings import ChannelSettings
    from gesco_net.grpc_kit import RECEIVER_SERVICE, set_serving
    from gesco_net.probes import free_port
    from receiver.service import ReceiverService
    from receiver.settings import ReceiverSettings
    from sender.app import create_app
    from sender.settings import SenderSettings

    receiver = ReceiverService(ReceiverSettings(port=free_port(), grpc_port=0, data_dir=tmp_path / "data", device="cpu",
                                                fsync=False, max_queue=2), generator=tiny_generator)
    receiver.server.start()  # gRPC only: no worker, so the queue stays full
    set_serving(receiver.health, RECEIVER_SERVICE, True)
    chan = create_server(ChannelSettings(port=0, receiver_address=f"127.0.0.1:{receiver.grpc_port}",
                                         budget_log=tmp_path / "budget.jsonl")).start()
    port = free_port()
    app = create_app(SenderSettings(port=port, channel_address=chan.address, height=TINY_RESOLUTION[0],
                                    width=TINY_RESOLUTION[1], load_segmenter=False, retry_after_s=3))
    try:
        with UvicornThread(app, port) as server:
            codes = [post(server.url, files, seed=i, id=f"q{i}") for i in range(3)]
            assert [r.status_code for r in codes] == [202, 202, 503], [r.text for r in codes]
            assert codes[2].headers["retry-after"] == "3" and "queue is full" in codes[2].json()["detail"]
            assert post(server.url, files, seed=0, id="q0").status_code == 202  # a retry of a stored job still works
        assert receiver.store.get("q2") is None and not (tmp_path / "data" / "jobs" / "q2").exists()
        assert receiver.store.counts()["queued"] == 2
        logged = [json.loads(line)["id"] for line in (tmp_path / "budget.jsonl").read_text().splitlines()]
        assert logged == ["q0", "q1"]
    finally:
        chan.stop()
        receiver.server.stop(0)
        receiver.store.close()


def test_label_and_instance_maps_have_their_size_limits(stack, files):
    label16 = big_png(3000, 3000, channels=1)  # 16-bit grey: 18 MB of samples
    with stack.sender(max_decoded_bytes=8 * 1024 * 1024) as url:
        r = post(url, {"image": files["image"], "label": label16})
        assert r.status_code == 413 and r.json()["detail"].startswith("label: label map is 3000x3000"), r.text
        r = post(url, {"image": files["image"], "label": files["label"], "instance": label16})
        assert r.status_code == 413 and "instance map" in r.json()["detail"], r.text
    with stack.sender(max_image_pixels=100_000) as url:
        r = post(url, {"image": files["image"], "label": big_png(1000, 1000, channels=1, depth=8)})
        assert r.status_code == 413 and "pixels" in r.json()["detail"], r.text


def test_receiver_upload_and_echoes_are_bounded(stack):
    from receiver.viewer import MAX_LABEL_BYTES

    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"label\"; filename=\"l.png\"\r\n\r\n"
        for _ in range((MAX_LABEL_BYTES + 2 * 1024 * 1024) // 65536):
            yield b"\0" * 65536

    r = httpx.post(stack.receiver_url + "/viewer/label.png", content=chunks(),
                   headers={"content-type": "multipart/form-data; boundary=b"}, timeout=60)
    assert r.status_code == 413, r.text[:300]
    r = httpx.get(stack.receiver_url + "/results", params={"before": "x" * 5000}, timeout=10)
    assert r.status_code == 404 and len(r.content) < 1200


@pytest.mark.parametrize("code, detail, status", [
    ("RESOURCE_EXHAUSTED", "receiver at x refused the frame: the receiver's queue is full", 503),
    ("PERMISSION_DENIED", "receiver at x refused the frame: job a exists already and belongs to another client", 409),
    ("PERMISSION_DENIED", "bad service key", 502),
])
def test_rpc_errors_map_to_clear_http_statuses(code, detail, status):
    import grpc

    from sender.errors import http_error_for_rpc

    class Failed(grpc.RpcError):
        def code(self):
            return getattr(grpc.StatusCode, code)

        def details(self):
            return detail

    e = http_error_for_rpc(Failed(), "127.0.0.1:1", retry_after_s=4)
    assert e.status_code == status
    if status == 503:
        assert e.headers == {"Retry-After": "4"}
