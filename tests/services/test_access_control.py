"""A hardened stack: API keys on every service, TLS on every hop, result ownership.

The three services run in-process (real HTTP over TLS, real gRPC over TLS) with the
certificates of ``gesco certs``: client keys on the sender and the receiver's REST API,
service keys on the channel's and the receiver's gRPC servers.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from svc_helpers import TINY_RESOLUTION, UvicornThread, scene_files

from gesco.wire import ReceivedFrame
from gesco_net import gesco_pb2_grpc
from gesco_net.auth import bearer_metadata, key_identity
from gesco_net.commands.certs import make_certificates
from gesco_net.logs import JobIdFilter, JsonFormatter
from gesco_net.probes import free_port, grpc_health
from gesco_net.tls import client_ssl_context

ALICE, BOB = "alice-key-0123456789abcdef", "bob-key-0123456789abcdef"
CHANNEL_KEY, RECEIVER_KEY = "channel-grpc-key-0123456789", "receiver-grpc-key-0123456789"


@dataclass
class Secured:
    certs: dict[str, Path]
    receiver: object
    channel: object
    sender_url: str
    receiver_url: str
    channel_address: str
    receiver_grpc: str
    verify: object

    def client(self, key: str | None = None, **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(verify=self.verify, headers=headers, timeout=60, **kw)


@pytest.fixture(scope="module")
def secured(tmp_path_factory, tiny_generator):
    from channel.server import create_server
    from channel.settings import ChannelSettings
    from receiver.service import ReceiverService
    from receiver.settings import ReceiverSettings
    from sender.app import create_app
    from sender.settings import SenderSettings

    tmp = tmp_path_factory.mktemp("secured")
    certs = make_certificates(tmp / "certs", ["localhost", "127.0.0.1"], days=1)
    tls = {"tls_cert": certs["server.pem"], "tls_key": certs["server-key.pem"]}
    ssl = {"ssl_certfile": str(certs["server.pem"]), "ssl_keyfile": str(certs["server-key.pem"])}
    rest, rgrpc, cport, sport = (free_port() for _ in range(4))
    with contextlib.ExitStack() as exits:
        receiver = ReceiverService(ReceiverSettings(
            port=rest, grpc_port=rgrpc, data_dir=tmp / "data", device="cpu", fsync=False,
            api_keys=f"{ALICE},{BOB}", grpc_api_keys=RECEIVER_KEY, **tls), generator=tiny_generator).start()
        exits.callback(receiver.stop)
        exits.enter_context(UvicornThread(receiver.app, rest, **ssl))
        channel = create_server(ChannelSettings(
            port=cport, receiver_address=f"localhost:{rgrpc}", budget_log=tmp / "budget.jsonl",
            grpc_api_keys=CHANNEL_KEY, receiver_api_key=RECEIVER_KEY, receiver_tls_ca=certs["ca.pem"],
            metrics_port=0, **tls)).start()
        exits.callback(channel.stop)
        receiver_url = f"https://127.0.0.1:{rest}"
        sender = create_app(SenderSettings(
            port=sport, channel_address=f"localhost:{cport}", receiver_url=receiver_url, height=TINY_RESOLUTION[0],
            width=TINY_RESOLUTION[1], load_segmenter=False, api_keys=f"{ALICE},{BOB}", channel_api_key=CHANNEL_KEY,
            channel_tls_ca=certs["ca.pem"], rate_limit_per_s=0))
        exits.enter_context(UvicornThread(sender, sport, **ssl))
        yield Secured(certs=certs, receiver=receiver, channel=channel, sender_url=f"https://127.0.0.1:{sport}",
                      receiver_url=receiver_url, channel_address=f"localhost:{cport}",
                      receiver_grpc=f"localhost:{rgrpc}", verify=client_ssl_context(certs["ca.pem"]))


@pytest.fixture(scope="module")
def files():
    return scene_files(seed=4)


def upload(client: httpx.Client, url: str, files: dict[str, bytes], **headers) -> httpx.Response:
    return client.post(url + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()},
                       data={"steps": "2"}, headers=headers)


@pytest.fixture(scope="module")
def alice_job(secured, files):
    """A job Alice sent (over HTTPS, through TLS gRPC), finished."""
    with secured.client(ALICE) as c:
        r = upload(c, secured.sender_url, files)
        assert r.status_code == 202, r.text
        body = r.json()
        for _ in range(600):
            doc = c.get(body["result_url"]).json()
            if doc["status"] in ("done", "failed"):
                break
            import time

            time.sleep(0.05)
        assert doc["status"] == "done", doc
    return body


def test_sender_wants_a_key(secured, files):
    with secured.client() as c:
        r = upload(c, secured.sender_url, files)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert "no API key" in r.json()["detail"]
    with secured.client("not-a-key-but-long-enough") as c:
        r = upload(c, secured.sender_url, files)
        assert r.status_code == 401 and "not valid" in r.json()["detail"]
    with secured.client(ALICE) as c:  # a key in another scheme is no key
        r = upload(c, secured.sender_url, files, Authorization=f"Basic {ALICE}")
        assert r.status_code == 401


def test_owner_reads_its_result_and_nobody_else(secured, alice_job):
    url = alice_job["result_url"]
    assert url.startswith(secured.receiver_url)
    with secured.client() as c:
        assert c.get(url).status_code == 401
    with secured.client(BOB) as c:
        for target in (url, url + "/image.png", url + "/received.png", url + "/denoised.png"):
            r = c.get(target)
            assert r.status_code == 403, (target, r.text)
            assert "another API key" in r.json()["detail"]
    with secured.client(ALICE) as c:
        doc = c.get(url).json()
        assert doc["id"] == alice_job["id"]
        image = c.get(doc["links"]["image"])
        assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    job = secured.receiver.store.get(alice_job["id"])
    assert job.owner == key_identity(ALICE) and ALICE not in json.dumps(job.__dict__, default=str)


def test_probes_and_metrics_need_no_key(secured):
    with secured.client() as c:
        for url in (secured.sender_url, secured.receiver_url):
            assert c.get(url + "/healthz").status_code == 200
            assert c.get(url + "/readyz").status_code == 200, c.get(url + "/readyz").text
            assert c.get(url + "/metrics").status_code == 200


def test_links_come_from_the_configured_url_not_the_host_header(secured, alice_job):
    with secured.client(ALICE) as c:
        doc = c.get(alice_job["result_url"], headers={"Host": "evil.example"}).json()
    for link in doc["links"].values():
        assert link.startswith(f"{secured.receiver_url}/result/{alice_job['id']}"), link


def test_https_needs_the_ca(secured):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(secured.sender_url + "/healthz")  # the system's CAs do not know ours
    other = make_certificates(secured.certs["ca.pem"].parent.parent / "other-ca", ["localhost"], days=1)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(secured.receiver_url + "/healthz", verify=client_ssl_context(other["ca.pem"]))
    assert httpx.get(secured.receiver_url + "/healthz", verify=secured.verify).status_code == 200


def test_grpc_tls_needs_the_ca(secured):
    ca = str(secured.certs["ca.pem"])
    assert grpc_health(secured.channel_address, ca=ca, timeout=5) == "SERVING"
    assert grpc_health(secured.receiver_grpc, ca=ca, timeout=5) == "SERVING"
    ip = secured.channel_address.replace("localhost", "127.0.0.1")  # the IP SAN (the Docker health checks dial it)
    assert grpc_health(ip, ca=ca, timeout=5) == "SERVING"
    assert grpc_health(secured.channel_address, timeout=2) == "UNREACHABLE"  # plaintext client, TLS server
    other = make_certificates(secured.certs["ca.pem"].parent.parent / "other-ca-2", ["localhost"], days=1)
    assert grpc_health(secured.channel_address, ca=str(other["ca.pem"]), timeout=2) == "UNREACHABLE"


def _tls_channel(secured, address: str) -> grpc.Channel:
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(secured.certs["ca.pem"].read_bytes()))


def test_grpc_keys_unauthenticated(secured, alice_job):
    frame = ReceivedFrame.FromString(secured.receiver.store.read_frame(alice_job["id"]))
    with _tls_channel(secured, secured.receiver_grpc) as ch:
        stub = gesco_pb2_grpc.ReceiverStub(ch)
        for metadata in ([], bearer_metadata("wrong-key-0123456789abc"), bearer_metadata(CHANNEL_KEY)):
            with pytest.raises(grpc.RpcError) as e:
                stub.Deliver(frame, timeout=10, metadata=metadata)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
    with _tls_channel(secured, secured.channel_address) as ch:
        with pytest.raises(grpc.RpcError) as e:
            gesco_pb2_grpc.ChannelStub(ch).Transmit(frame.header, timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and "no API key" in e.value.details()


def test_grpc_permission_denied_for_another_owners_job(secured, alice_job):
    """A re-delivery of Alice's job id under Bob's identity is refused; under Alice's it is idempotent."""
    frame = ReceivedFrame.FromString(secured.receiver.store.read_frame(alice_job["id"]))
    with _tls_channel(secured, secured.receiver_grpc) as ch:
        stub = gesco_pb2_grpc.ReceiverStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.Deliver(frame, timeout=10, metadata=bearer_metadata(RECEIVER_KEY, key_identity(BOB)))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as e:  # and without an owner (a job made without keys)
            stub.Deliver(frame, timeout=10, metadata=bearer_metadata(RECEIVER_KEY))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as e:
            stub.Deliver(frame, timeout=10, metadata=bearer_metadata(RECEIVER_KEY, "not-hex"))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        ack = stub.Deliver(frame, timeout=10, metadata=bearer_metadata(RECEIVER_KEY, key_identity(ALICE)))
        assert ack.message == "already stored"
    assert secured.receiver.store.get(alice_job["id"]).owner == key_identity(ALICE)


def test_sender_with_a_wrong_channel_key_stores_nothing(secured, files):
    from sender.app import create_app
    from sender.settings import SenderSettings

    port = free_port()
    before = secured.receiver.store.counts()
    app = create_app(SenderSettings(
        port=port, channel_address=secured.channel_address, receiver_url=secured.receiver_url,
        height=TINY_RESOLUTION[0], width=TINY_RESOLUTION[1], load_segmenter=False, api_keys=ALICE,
        channel_api_key="wrong-channel-key-0123456789", channel_tls_ca=secured.certs["ca.pem"]))
    with UvicornThread(app, port) as server, secured.client(ALICE) as c:
        r = upload(c, server.url, files)
        assert r.status_code == 502 and "UNAUTHENTICATED" in r.json()["detail"], r.text
    assert secured.receiver.store.counts() == before


def test_channel_metrics_port(secured, alice_job):
    from gesco_net.grpc_kit import CHANNEL_SERVICE

    with _tls_channel(secured, secured.channel_address) as ch, pytest.raises(grpc.RpcError):
        gesco_pb2_grpc.ChannelStub(ch).Transmit(ReceivedFrame().header, timeout=10)  # no key
    text = httpx.get(f"http://127.0.0.1:{secured.channel.metrics_port}/metrics", timeout=5).text
    method = f"/{CHANNEL_SERVICE}/Transmit"
    assert _value(text, f'gesco_grpc_requests_total{{code="OK",method="{method}"}}') >= 1
    assert _value(text, f'gesco_grpc_requests_total{{code="UNAUTHENTICATED",method="{method}"}}') >= 1
    assert _value(text, 'gesco_bits_sent_total{part="payload"}') >= alice_job["budget"]["payload_bits"]
    assert _value(text, 'gesco_stage_seconds_count{stage="deliver"}') >= 1


def test_json_logs_carry_the_job_id(secured, files):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(JobIdFilter())
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger("gesco")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with secured.client(BOB) as c:
            r = upload(c, secured.sender_url, files)
        assert r.status_code == 202, r.text
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    job = r.json()["id"]
    mine = [d for d in lines if d.get("job_id") == job]
    services = {d["logger"] for d in mine}
    # the sender's, the channel's and the receiver's ingest lines of this job all carry its id
    assert {"gesco.sender", "gesco.channel", "gesco.receiver.ingest"} <= services, lines
    assert all(d["level"] and d["time"].endswith("Z") and d["message"] for d in lines)


def _value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics")


def test_preflight_needs_no_key(secured):
    """A CORS preflight carries no credentials: the key check lets it through (no handler runs)."""
    with secured.client() as c:
        r = c.options(secured.sender_url + "/transmit", headers={"Origin": secured.receiver_url,
                                                                 "Access-Control-Request-Method": "POST"})
    assert r.status_code != 401


def test_gesco_send_takes_the_key_from_the_environment(secured, files, tmp_path, monkeypatch, capsys):
    from gesco_net.cli import main

    for name in ("image", "label", "instance"):
        (tmp_path / f"{name}.png").write_bytes(files[name])
    argv = ["send", str(tmp_path / "image.png"), "--label", str(tmp_path / "label.png"), "--instance",
            str(tmp_path / "instance.png"), "--steps", "2", "--sender", secured.sender_url,
            "--ca", str(secured.certs["ca.pem"]), "--out", str(tmp_path / "out.png"), "--maps-out", str(tmp_path / "m")]
    monkeypatch.delenv("GESCO_API_KEY", raising=False)
    assert main(argv) == 2
    assert "set GESCO_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("GESCO_API_KEY", BOB)
    assert main(argv) == 0, capsys.readouterr().err
    assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "m_denoised.png").exists()
    assert BOB not in capsys.readouterr().out


@pytest.mark.parametrize("service, env, message", [
    ("sender", {"GESCO_SENDER_API_KEYS": "short", "GESCO_SENDER_LOAD_SEGMENTER": "false"}, "at least 16 characters"),
    ("channel", {"GESCO_CHANNEL_TLS_CERT": "cert.pem"}, "set both the TLS certificate and its key"),
    ("channel", {"GESCO_CHANNEL_GRPC_API_KEYS_FILE": "missing-keys"}, "cannot read the API key file"),
])
def test_services_refuse_unusable_security_settings(service, env, message, monkeypatch, capsys):
    """A short key, half a TLS pair or a missing key file stops the service at start-up with one line (status 2)."""
    import importlib

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    for k, v in {**env, f"GESCO_{service.upper()}_PORT": str(free_port()), f"GESCO_{service.upper()}_TORCH_THREADS": "0"
                 }.items():
        monkeypatch.setenv(k, v)
    try:
        assert importlib.import_module(f"{service}.__main__").main([]) == 2
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert err.startswith(f"{service}: cannot start:") and message in err, err


def test_history_lists_only_the_callers_jobs(secured, alice_job, files):
    with secured.client(BOB) as c:
        bob = upload(c, secured.sender_url, files).json()["id"]
    with secured.client() as c:
        assert c.get(secured.receiver_url + "/results").status_code == 401
    seen = {}
    for name, key in (("alice", ALICE), ("bob", BOB)):
        with secured.client(key) as c:
            r = c.get(secured.receiver_url + "/results", params={"limit": 500}, headers={"Host": "evil.example"})
            assert r.status_code == 200, r.text
            seen[name] = {d["id"]: d["url"] for d in r.json()["results"]}
    assert alice_job["id"] in seen["alice"] and bob not in seen["alice"]
    assert bob in seen["bob"] and alice_job["id"] not in seen["bob"]
    owners = {secured.receiver.store.get(i).owner for i in seen["alice"]}
    assert owners == {key_identity(ALICE)}
    assert seen["bob"][bob] == f"{secured.receiver_url}/result/{bob}"  # the configured URL, not the Host header


def test_viewer_label_colouring_needs_a_key_but_the_page_does_not(secured):
    import numpy as np

    from gesco.uploads import encode_png

    files = {"label": ("l.png", encode_png(np.zeros((8, 16), np.uint8)))}
    with secured.client() as c:
        assert c.get(secured.receiver_url + "/viewer").status_code == 200
        assert c.get(secured.receiver_url + "/viewer/config.json").status_code == 200
        assert c.post(secured.receiver_url + "/viewer/label.png", files=files).status_code == 401
    with secured.client(ALICE) as c:
        r = c.post(secured.receiver_url + "/viewer/label.png", files=files)
        assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_authorization_headers_are_refused(secured):
    """Before, the last header won: a proxy adding its own header could be overridden by the client's."""
    with secured.client() as c:
        r = c.get(secured.receiver_url + "/results",
                  headers=[("authorization", f"Bearer {BOB}"), ("authorization", f"Bearer {ALICE}")])
        assert r.status_code == 400 and "one Authorization header" in r.json()["detail"]
