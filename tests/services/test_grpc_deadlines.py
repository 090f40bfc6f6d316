"""Every gRPC call the services and the CLI make carries a deadline (``timeout=``)."""

from __future__ import annotations

import ast
from pathlib import Path

from gesco.wire import gesco_pb2

REPO = Path(__file__).resolve().parents[2]
#: stub methods: the gesco services' and the health service's
RPC_NAMES = {m.name for s in gesco_pb2.DESCRIPTOR.services_by_name.values() for m in s.methods} | {"Check", "Watch"}


def test_every_stub_call_has_a_timeout():
    calls, missing = 0, []
    for folder in ("gesco", "gesco_net", "sender", "channel", "receiver", "bench", "scripts"):
        for path in (REPO / folder).rglob("*.py"):
            if path.name.endswith("_pb2_grpc.py") or path.name.endswith("_pb2.py"):
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RPC_NAMES:
                    calls += 1
                    if not any(k.arg == "timeout" for k in node.keywords):
                        missing.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert calls >= 3  # Transmit, Deliver, health Check at least
    assert missing == [], f"gRPC calls without a deadline: {missing}"
