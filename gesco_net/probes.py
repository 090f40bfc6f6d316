"""Is a service up? Health probes over HTTP and gRPC, and free loopback ports.

Used by ``gesco up`` (wait until the three services answer), the Docker health checks
(``python -m gesco_net.probes grpc HOST:PORT``), the tests and the benchmark.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def grpc_health(address: str, service: str = "", timeout: float = 1.0, ca: str | None = None) -> str:
    """Status of ``service`` at ``address``: ``"SERVING"``, ``"NOT_SERVING"``, ... or ``"UNREACHABLE"``.

    ``ca``: the CA certificate (PEM file) of a TLS server; ``None`` probes in plaintext.
    """
    if ca is None:
        channel = grpc.insecure_channel(address)
    else:
        with open(ca, "rb") as f:
            channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=f.read()))
    with channel:
        return grpc_health_on(channel, service, timeout)


def grpc_health_on(channel: grpc.Channel, service: str = "", timeout: float = 1.0) -> str:
    """:func:`grpc_health` over an existing channel (a service's own client connection)."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as e:
        return "UNREACHABLE" if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) else e.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def http_ok(url: str, timeout: float = 1.0, ca: str | None = None) -> bool:
    """Whether ``GET url`` answers 2xx within ``timeout`` seconds (``ca``: trust this CA for https)."""
    context = ssl.create_default_context(cafile=ca) if ca else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as reply:
            return 200 <= reply.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until(check, timeout: float, what: str, interval: float = 0.1, alive=None) -> None:
    """Poll ``check()`` until it is true.

    Args:
        check: callable returning a bool.
        timeout: seconds before giving up.
        what: description for the error message.
        alive: optional callable; when it returns false (the process died) stop at once.
    Raises:
        TimeoutError: ``check`` stayed false for ``timeout`` seconds.
        RuntimeError: ``alive()`` became false.
    """
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if alive is not None and not alive():
            raise RuntimeError(f"{what}: the process exited before it became healthy")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not healthy after {timeout:.0f} s")
        time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    """``python -m gesco_net.probes {grpc HOST:PORT | http URL}``: exit 0 when healthy."""
    p = argparse.ArgumentParser(prog="python -m gesco_net.probes", description=main.__doc__)
    p.add_argument("kind", choices=["grpc", "http"])
    p.add_argument("target", help="HOST:PORT for grpc, a URL for http")
    p.add_argument("--service", default="", help="gRPC service name (default: the whole server)")
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--ca", default=os.environ.get("GESCO_PROBE_CA") or None,
                   help="CA certificate (PEM) of a TLS server (default: $GESCO_PROBE_CA; unset: plaintext)")
    args = p.parse_args(argv)
    if args.kind == "grpc":
        status = grpc_health(args.target, args.service, args.timeout, ca=args.ca)
        print(status)
        return 0 if status == "SERVING" else 1
    ok = http_ok(args.target, args.timeout, ca=args.ca)
    print("OK" if ok else "DOWN")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
