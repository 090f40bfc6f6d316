"""Mutual TLS between the services (issue 25): the gRPC servers can require client certificates.

The whole chain runs with it (sender -> channel -> receiver, each gRPC hop refusing clients
without a certificate of the services' CA): an upload is transmitted and generated, while
a client without a certificate, or with one from another CA, is refused at the handshake.
"""

from __future__ import annotations

import contextlib
import time

import httpx
import pytest
from svc_helpers import TINY_RESOLUTION, UvicornThread, scene_files

from gesco.errors import GescoInputError
from gesco_net import tls
from gesco_net.commands.certs import make_certificates
from gesco_net.probes import free_port, grpc_health_on
from gesco_net.tls import client_ssl_context


@pytest.fixture(scope="module")
def mtls(tmp_path_factory, tiny_generator):
    from channel.server import create_server
    from channel.settings import ChannelSettings
    from receiver.service import ReceiverService
    from receiver.settings import ReceiverSettings
    from sender.app import create_app
    from sender.settings import SenderSettings

    tmp = tmp_path_factory.mktemp("mtls")
    certs = make_certificates(tmp / "certs", ["localhost", "127.0.0.1"], days=1)
    pair = {"tls_cert": certs["server.pem"], "tls_key": certs["server-key.pem"]}
    https = {"ssl_certfile": str(certs["server.pem"]), "ssl_keyfile": str(certs["server-key.pem"])}
    rest, rgrpc, cport, sport = (free_port() for _ in range(4))
    with contextlib.ExitStack() as exits:
        receiver = ReceiverService(ReceiverSettings(
            port=rest, grpc_port=rgrpc, data_dir=tmp / "data", device="cpu", fsync=False,
            grpc_client_ca=certs["ca.pem"], **pair), generator=tiny_generator).start()
        exits.callback(receiver.stop)
        exits.enter_context(UvicornThread(receiver.app, rest, **https))
        channel = create_server(ChannelSettings(
            port=cport, receiver_address=f"localhost:{rgrpc}", budget_log=tmp / "budget.jsonl",
            receiver_tls_ca=certs["ca.pem"], receiver_tls_cert=certs["server.pem"],
            receiver_tls_key=certs["server-key.pem"], grpc_client_ca=certs["ca.pem"], **pair)).start()
        exits.callback(channel.stop)
        sender = create_app(SenderSettings(
            port=sport, channel_address=f"localhost:{cport}", receiver_url=f"https://127.0.0.1:{rest}",
            height=TINY_RESOLUTION[0], width=TINY_RESOLUTION[1], load_segmenter=False, channel_tls_ca=certs["ca.pem"],
            channel_tls_cert=certs["server.pem"], channel_tls_key=certs["server-key.pem"], rate_limit_per_s=0))
        exits.enter_context(UvicornThread(sender, sport, **https))
        yield {"certs": certs, "sender": f"https://127.0.0.1:{sport}", "channel": f"localhost:{cport}",
               "receiver_grpc": f"localhost:{rgrpc}", "tmp": tmp, "ports": (sport, cport, rest, rgrpc),
               "verify": client_ssl_context(certs["ca.pem"])}


def test_an_upload_crosses_both_mutual_tls_hops(mtls):
    files = scene_files(seed=6)
    r = httpx.post(mtls["sender"] + "/transmit", files={k: (f"{k}.png", v) for k, v in files.items()},
                   data={"steps": "2"}, timeout=60, verify=mtls["verify"])
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    while (doc := httpx.get(r.json()["result_url"], verify=mtls["verify"]).json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert doc["status"] == "done", doc


@pytest.mark.parametrize("hop", ["channel", "receiver_grpc"])
def test_clients_without_a_certificate_of_the_ca_are_refused(mtls, hop):
    certs = mtls["certs"]
    other = make_certificates(mtls["tmp"] / f"other-{hop}", ["localhost"], days=1)
    address = mtls[hop]
    with tls.client_channel(address, 1 << 20, certs["ca.pem"]) as ch:  # server verified, no client certificate
        assert grpc_health_on(ch, timeout=5) == "UNREACHABLE"
    with tls.client_channel(address, 1 << 20, certs["ca.pem"], client_cert=other["server.pem"],
                            client_key=other["server-key.pem"]) as ch:  # a certificate of another CA
        assert grpc_health_on(ch, timeout=5) == "UNREACHABLE"
    with tls.client_channel(address, 1 << 20, certs["ca.pem"], client_cert=certs["server.pem"],
                            client_key=certs["server-key.pem"]) as ch:
        assert grpc_health_on(ch, timeout=5) == "SERVING"


def test_a_client_certificate_without_tls_is_a_configuration_error(mtls):
    certs = mtls["certs"]
    with pytest.raises(GescoInputError, match="over TLS only"):
        tls.client_channel("localhost:1", 1 << 20, None, client_cert=certs["server.pem"],
                           client_key=certs["server-key.pem"])


def test_gesco_up_probes_a_tls_stack_and_sets_every_hops_settings(mtls, monkeypatch):
    """``gesco up --tls DIR --mtls``: its start-up probes speak TLS (with the client certificate), and
    the services get the certificate settings this module's stack was built with."""
    import argparse

    from gesco_net.cli import build_parser
    from gesco_net.commands.up import healthy, services_for

    monkeypatch.delenv("GESCO_TLS_DIR", raising=False)
    sport, cport, rest, rgrpc = mtls["ports"]
    folder = str(mtls["certs"]["ca.pem"].parent)
    args = argparse.Namespace(host="localhost", sender_port=sport, channel_port=cport, receiver_port=rest,
                              receiver_grpc_port=rgrpc, tls=folder, mtls=True)
    assert all(healthy(name, args) for name in ("receiver", "channel", "sender"))
    assert not healthy("channel", argparse.Namespace(**{**vars(args), "mtls": False}))  # no client certificate
    assert not healthy("sender", argparse.Namespace(**{**vars(args), "tls": None, "mtls": False}))  # plain HTTP

    ports = [str(p) for pair in zip(("--sender-port", "--channel-port", "--receiver-port", "--receiver-grpc-port"),
                                    (sport, cport, rest, rgrpc)) for p in pair]
    base = ["up", "--data-dir", str(mtls["tmp"] / "up"), "--no-segmenter", *ports, "--tls", folder, "--mtls"]
    env = {s.name: s.env for s in services_for(build_parser().parse_args(base))}
    ca, cert = str(mtls["certs"]["ca.pem"]), str(mtls["certs"]["server.pem"])
    assert env["receiver"]["GESCO_RECEIVER_TLS_CERT"] == cert and env["receiver"]["GESCO_RECEIVER_GRPC_CLIENT_CA"] == ca
    assert env["channel"]["GESCO_CHANNEL_RECEIVER_TLS_CA"] == ca and env["channel"]["GESCO_CHANNEL_GRPC_CLIENT_CA"] == ca
    assert env["channel"]["GESCO_CHANNEL_RECEIVER_TLS_CERT"] == cert
    assert env["sender"]["GESCO_SENDER_CHANNEL_TLS_CERT"] == cert
    assert env["sender"]["GESCO_SENDER_RECEIVER_URL"].startswith("https://")
    with pytest.raises(Exception, match="missing"):
        services_for(build_parser().parse_args([*base[:-3], "--tls", str(mtls["tmp"] / "nowhere")]))
