"""The default (keyless, loopback) stack: cross-origin refusal, rate limits, job ids, metrics, /readyz."""

from __future__ import annotations

import re

import httpx
import pytest
from conftest import wait_result
from svc_helpers import scene_files

from gesco_net.probes import free_port


@pytest.fixture(scope="module")
def files():
    return scene_files(seed=5)


def post(url: str, files: dict[str, bytes] | None = None, headers: dict | None = None, **kw) -> httpx.Response:
    files = files or {}
    return httpx.post(url + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()},
                      data={"steps": "2"}, headers=headers or {}, timeout=60, **kw)


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "http://127.0.0.1:1"},  # another port on this machine is another origin
    {"Origin": "null"},  # sandboxed iframes, file:// pages
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
], ids=["other-site", "other-port", "null", "fetch-cross-site", "fetch-same-site"])
def test_cross_origin_form_posts_are_refused(stack, files, headers):
    before = stack.receiver.store.counts()
    r = post(stack.sender_url, files, headers)
    assert r.status_code == 403 and "cross-origin" in r.json()["detail"], r.text
    assert stack.receiver.store.counts() == before and "ok" not in r.text


def test_dns_rebinding_is_refused(stack, files):
    """Origin and Host agree, but the host is not this machine's name: a rebinding page."""
    port = stack.sender_url.rsplit(":", 1)[1]
    r = post(stack.sender_url, files, {"Origin": f"http://evil.example:{port}", "Host": f"evil.example:{port}"})
    assert r.status_code == 403


@pytest.mark.parametrize("origin", ["own", "localhost-alias", "receiver"])
def test_same_origin_and_the_receivers_pages_may_post(stack, files, origin):
    port = stack.sender_url.rsplit(":", 1)[1]
    value = {"own": stack.sender_url, "localhost-alias": f"http://localhost:{port}",
             "receiver": stack.receiver_url}[origin]
    headers = {"Origin": value, "Sec-Fetch-Site": "same-origin" if origin != "receiver" else "same-site"}
    if origin == "localhost-alias":
        headers["Host"] = f"localhost:{port}"
    r = post(stack.sender_url, files, headers)
    assert r.status_code == 202, r.text


def test_allowed_origins_setting(stack, files):
    with stack.sender(allowed_origins="https://testbed.example") as url:
        assert post(url, files, {"Origin": "https://testbed.example"}).status_code == 202
        assert post(url, files, {"Origin": "https://other.example"}).status_code == 403


def test_rate_limit_per_client_with_retry_after(stack):
    with stack.sender(rate_limit_per_s=0.2, rate_limit_burst=2) as url:
        codes = [post(url).status_code for _ in range(2)]
        assert codes == [422, 422]  # no image: refused, but each took a token
        r = post(url)
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) >= 1 and "too many requests" in r.json()["detail"]
        assert httpx.get(url + "/healthz").status_code == 200  # only /transmit is limited
        assert 'status="429"' in httpx.get(url + "/metrics").text


def test_rate_limit_counts_keys_separately(stack):
    a, b = "client-a-0123456789abcdef", "client-b-0123456789abcdef"
    with stack.sender(rate_limit_per_s=0.2, rate_limit_burst=1, api_keys=f"{a},{b}") as url:
        assert post(url, headers={"Authorization": f"Bearer {a}"}).status_code == 422
        assert post(url, headers={"Authorization": f"Bearer {a}"}).status_code == 429
        assert post(url, headers={"Authorization": f"Bearer {b}"}).status_code == 422
        assert post(url).status_code == 401  # no key: refused before it takes a token


def test_job_ids_are_128_random_bits():
    from sender.stages import new_job_id

    ids = [new_job_id() for _ in range(64)]
    assert len(set(ids)) == 64 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    # a uuid4 fixes 6 bits (version nibble '4', variant 8-b): 128 random bits do not
    assert {i[12] for i in ids} != {"4"}
    assert not {i[16] for i in ids} <= set("89ab")


def test_links_ignore_the_host_header(stack, files):
    r = post(stack.sender_url, files)
    assert r.status_code == 202
    doc = httpx.get(r.json()["result_url"], headers={"Host": "evil.example"}).json()
    assert doc["links"]["self"] == f"{stack.receiver_url}/result/{doc['id']}"


def test_sender_and_receiver_metrics(stack, files):
    r = post(stack.sender_url, files)
    assert r.status_code == 202
    wait_result(r.json()["result_url"])
    sender = httpx.get(stack.sender_url + "/metrics").text
    assert re.search(r'gesco_http_requests_total\{method="POST",route="/transmit",status="202"\} [1-9]', sender)
    for stage in ("decode", "resize", "segment", "encode", "reference", "channel"):
        assert re.search(rf'gesco_stage_seconds_count\{{stage="{stage}"\}} [1-9]', sender), stage
    assert re.search(r'gesco_bits_sent_total\{part="payload"\} [1-9]', sender)
    httpx.get(stack.sender_url + "/no/such/" + "x" * 50)
    assert "x" * 50 not in httpx.get(stack.sender_url + "/metrics").text  # unmatched paths do not become labels
    receiver = httpx.get(stack.receiver_url + "/metrics").text
    assert re.search(r'gesco_jobs\{status="queued"\} \d', receiver)
    for stage in ("queue_wait", "fds", "sampling", "png", "total"):
        assert re.search(rf'gesco_stage_seconds_count\{{stage="{stage}"\}} [1-9]', receiver), stage
    assert re.search(r'gesco_grpc_requests_total\{code="OK",method="/gesco\.v1\.Receiver/Deliver"\} [1-9]', receiver)
    assert 'route="/result/{job_id}"' in receiver


def test_readyz_reports_a_dead_channel(stack):
    with stack.sender(channel_address=f"127.0.0.1:{free_port()}") as url:
        assert httpx.get(url + "/healthz").status_code == 200  # alive ...
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503  # ... but not ready
        checks = r.json()["checks"]
        assert checks["channel"].startswith("not ready") and "UNREACHABLE" in checks["channel"]
    ok = httpx.get(stack.sender_url + "/readyz")
    assert ok.status_code == 200 and ok.json() == {"ready": True, "checks": {
        "segmenter": "disabled (uploads need a label map)", "channel": "ok"}}


def test_receiver_readyz_before_start_and_after(tmp_path, tiny_generator):
    from fastapi.testclient import TestClient

    from receiver.service import ReceiverService
    from receiver.settings import ReceiverSettings

    service = ReceiverService(ReceiverSettings(port=free_port(), grpc_port=0, data_dir=tmp_path / "d", device="cpu",
                                               fsync=False), generator=tiny_generator)
    client = TestClient(service.app)
    try:
        r = client.get("/readyz")
        assert r.status_code == 503
        checks = r.json()["checks"]
        assert checks["worker"].startswith("not ready") and checks["grpc"].startswith("not ready")
        assert checks["store"].startswith("sqlite (") and checks["model"].startswith("loaded")
        assert client.get("/healthz").status_code == 200
        service.start()
        assert client.get("/readyz").status_code == 200
        (tmp_path / "d").rename(tmp_path / "gone")  # the data directory disappears
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["store"].startswith("not ready: cannot write")
    finally:
        service.stop()
