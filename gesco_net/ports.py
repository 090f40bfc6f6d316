"""Which ports ``gesco up`` uses, and whether they are free before anything starts.

Each port comes from the ``gesco up`` flag when one is given, else from the service's own
setting (``GESCO_SENDER_PORT``, ``GESCO_CHANNEL_PORT``, ``GESCO_RECEIVER_PORT``,
``GESCO_RECEIVER_GRPC_PORT``, read through the settings classes so the same validation
applies), else from that setting's default (8000-8003).

:func:`check_ports_free` binds each port the way the servers will (``SO_REUSEADDR``,
which lets a server reuse a port in ``TIME_WAIT`` but never one that is listening) and
refuses with ``port 8001 is in use (channel gRPC)``; without it, a second ``gesco up``
found the first instance's services healthy, said "all services are running", and then
its own children died on the taken ports.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from gesco.errors import GescoError


class PortInUseError(GescoError):
    """A port ``gesco up`` needs is taken (or two services were given the same port)."""


@dataclass(frozen=True)
class PortSpec:
    """One listening port of a service.

    Attributes:
        name: what listens there (``"sender HTTP"``, ``"channel gRPC"``, ...).
        port: the port number.
        source: where the number came from (``"--sender-port"``, ``"GESCO_SENDER_PORT"``, ``"default"``).
    """

    name: str
    port: int
    source: str


def bind_probe(host: str, port: int) -> OSError | None:
    """Try to bind ``host:port`` (TCP, ``SO_REUSEADDR`` as uvicorn and gRPC do); the error, or ``None``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen(1)
        except OSError as e:
            return e
    return None


def check_ports_free(host: str, ports: list[PortSpec]) -> None:
    """Refuse before starting anything when a port is taken or used twice.

    Raises:
        PortInUseError: ``port 8001 is in use (channel gRPC, from GESCO_CHANNEL_PORT); ...``
            naming every taken port, or the two services given the same port.
    """
    seen: dict[int, PortSpec] = {}
    for p in ports:
        if p.port == 0:
            continue
        if p.port in seen:
            other = seen[p.port]
            raise PortInUseError(
                f"port {p.port} is given to both the {other.name} ({other.source}) and the {p.name} ({p.source})"
            )
        seen[p.port] = p
    problems = []
    for p in ports:
        if p.port == 0:
            continue
        err = bind_probe(host, p.port)
        if err is None:
            continue
        if err.errno == errno.EADDRINUSE:
            problems.append(f"port {p.port} is in use ({p.name}, from {p.source})")
        else:
            problems.append(f"port {p.port} cannot be bound on {host} ({p.name}, from {p.source}): {err.strerror or err}")
    if problems:
        raise PortInUseError(
            "; ".join(problems) + ". Stop what uses it (another `gesco up`?) or choose other ports with the "
            "--*-port flags or the GESCO_*_PORT variables."
        )
