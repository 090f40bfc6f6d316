"""Generate the Python modules of the wire format from ``proto/gesco.proto``.

Run from the repository root after any change to the .proto file:

    python -m gesco.wire.generate            # writes gesco/wire/gesco_pb2{,_grpc}.py and .pyi

It calls ``grpc_tools.protoc`` (the ``grpcio-tools`` package, a development dependency
only: the runtime imports the committed modules) and rewrites the generated gRPC
module's ``import gesco_pb2`` into a package-relative import. ``tests/wire`` regenerates
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
PROTO_NAME = "gesco.proto"
GENERATED = ("gesco_pb2.py", "gesco_pb2.pyi", "gesco_pb2_grpc.py")


def generate(out_dir: Path = WIRE_DIR, proto_dir: Path = PROTO_DIR, descriptor_set: Path | None = None) -> list[Path]:
    """Run protoc on ``proto_dir/gesco.proto``; write the three modules into ``out_dir``.

    Args:
        out_dir: folder for ``gesco_pb2.py``, ``gesco_pb2.pyi``, ``gesco_pb2_grpc.py``.
        proto_dir: folder holding ``gesco.proto``.
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
    grpc_module = out_dir / "gesco_pb2_grpc.py"
    text = grpc_module.read_text()
    text, n = re.subn(r"^import gesco_pb2 as gesco__pb2$", "from . import gesco_pb2 as gesco__pb2", text, flags=re.M)
    if n != 1:
        raise RuntimeError("generated gRPC module does not import gesco_pb2 as expected")
    grpc_module.write_text(text)
    return [out_dir / name for name in GENERATED]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WIRE_DIR, help="output folder (default: gesco/wire)")
    parser.add_argument("--proto-dir", type=Path, default=PROTO_DIR, help="folder holding gesco.proto")
    args = parser.parse_args(argv)
    for path in generate(args.out, args.proto_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
