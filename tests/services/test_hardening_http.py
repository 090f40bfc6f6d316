"""Hardening, second pass (issue 25), HTTP side: no event-loop stalls, metrics labels clients cannot grow."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np

from gesco.uploads import encode_png


def test_label_colouring_runs_off_the_event_loop(stack, monkeypatch):
    """Before, 4 clients uploading label maps took the receiver's /healthz from 3 ms to 3.4 s."""
    import receiver.viewer as viewer

    colour = viewer._colour_png

    def slow_colour(data, space):
        time.sleep(1.5)  # blocking, as decoding and encoding a large map is
        return colour(data, space)

    monkeypatch.setattr(viewer, "_colour_png", slow_colour)
    files = {"label": ("l.png", encode_png(np.zeros((8, 16), np.uint8)))}
    replies: list[int] = []
    uploads = [threading.Thread(target=lambda: replies.append(
        httpx.post(stack.receiver_url + "/viewer/label.png", files=files, timeout=30).status_code)) for _ in range(2)]
    for t in uploads:
        t.start()
    time.sleep(0.3)  # both uploads are being coloured now
    t0 = time.perf_counter()
    assert httpx.get(stack.receiver_url + "/healthz", timeout=30).status_code == 200
    health_s = time.perf_counter() - t0
    for t in uploads:
        t.join(30)
    assert replies == [200, 200]
    assert health_s < 0.75, f"/healthz took {health_s:.2f} s while label maps were coloured"


def test_method_names_do_not_create_metrics_series(stack):
    with httpx.Client() as c:
        for i in range(20):
            c.request(f"X{i}FOO", stack.sender_url + "/healthz")
        text = c.get(stack.sender_url + "/metrics").text
    assert "X0FOO" not in text and "X19FOO" not in text
    assert 'gesco_http_requests_total{method="other",route="/healthz"' in text
