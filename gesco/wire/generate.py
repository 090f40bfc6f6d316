"""Generate the Python modules of the wire format from ``proto/gesco.proto``.

Run from the repository root after any change to the .proto file:

    python -m gesco.wire.generate            # writes gesco/wire/gesco_pb2.py{,i} and gesco_net/gesco_pb2_grpc.py

It calls ``grpc_tools.protoc`` (the ``grpcio-tools`` package, a development dependency
only: the runtime imports the committed modules). The messages stay in the core
(``gesco/wire``, protobuf only); the gRPC stubs import grpcio, so they go to the network
wing (``gesco_net/``, docs/architecture.md), their ``import gesco_pb2`` rewritten into
``from gesco.wire import gesco_pb2``. ``tests/wire`` regenerates
into a temporary folder and fails when the committed modules are stale.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

#: the repository's proto folder and the package folder the modules go to
REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO_ROOT / "proto"
WIRE_DIR = Path(__file__).resolve().parent
#: where the gRPC stubs go: the network wing (a folder, not an import: the core never imports it)
STUB_DIR = REPO_ROOT / "gesco_net"
PROTO_NAME = "gesco.proto"
#: the generated modules, each with the folder it is committed in
#: the generated stubs' import of the messages (protoc writes ``import gesco_pb2 as gesco__pb2``)
STUB_IMPORT = "from gesco.wire import gesco_pb2 as gesco__pb2"
GENERATED = {"gesco_pb2.py": WIRE_DIR, "gesco_pb2.pyi": WIRE_DIR, "gesco_pb2_grpc.py": STUB_DIR}


def generate(out_dir: Path = WIRE_DIR, proto_dir: Path = PROTO_DIR, descriptor_set: Path | None = None,
             stub_dir: Path | None = None) -> list[Path]:
    """Run protoc on ``proto_dir/gesco.proto``; write the messages into ``out_dir``, the stubs into ``stub_dir``.

    Args:
        out_dir: folder for ``gesco_pb2.py`` and ``gesco_pb2.pyi``.
        proto_dir: folder holding ``gesco.proto``.
        stub_dir: folder for ``gesco_pb2_grpc.py``; ``None``: :data:`STUB_DIR` when ``out_dir``
            is :data:`WIRE_DIR`, else ``out_dir`` (a test regenerating into one temporary folder).
        descriptor_set: also write the serialized ``FileDescriptorSet`` here (for tests).
    Returns:
        Paths of the generated modules.
    Raises:
        RuntimeError: grpcio-tools missing or protoc failed.
    """
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("grpcio-tools is needed to generate the wire modules: pip install grpcio-tools") from exc
    proto = proto_dir / PROTO_NAME
    if not proto.is_file():
        raise RuntimeError(f"{proto} not found (run from a source checkout)")
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
    ]
    if descriptor_set is not None:
        args.append(f"--descriptor_set_out={descriptor_set}")
    args.append(str(proto))
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {proto}")
    generated_stub = out_dir / "gesco_pb2_grpc.py"
    text = generated_stub.read_text()
    text, n = re.subn(r"^import gesco_pb2 as gesco__pb2$", STUB_IMPORT, text, flags=re.M)
    if n != 1:
        raise RuntimeError("generated gRPC module does not import gesco_pb2 as expected")
    if stub_dir is None:
        stub_dir = STUB_DIR if out_dir.resolve() == WIRE_DIR else out_dir
    stub_dir.mkdir(parents=True, exist_ok=True)
    generated_stub.unlink()
    (stub_dir / "gesco_pb2_grpc.py").write_text(text)
    return [out_dir / "gesco_pb2.py", out_dir / "gesco_pb2.pyi", stub_dir / "gesco_pb2_grpc.py"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WIRE_DIR, help="folder of the messages (default: gesco/wire)")
    parser.add_argument("--stub-out", type=Path, default=None,
                        help="folder of the gRPC stubs (default: gesco_net with the default --out, else --out)")
    parser.add_argument("--proto-dir", type=Path, default=PROTO_DIR, help="folder holding gesco.proto")
    args = parser.parse_args(argv)
    for path in generate(args.out, args.proto_dir, stub_dir=args.stub_out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
