"""The ``gesco`` command line.

Each sub-command lives in its own module under :mod:`gesco.commands` and registers
itself with ``register(subparsers)``; its handler returns the process exit code.
Errors that come from user input (:class:`gesco.errors.GescoError`) are printed as one
line and exit with status 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gesco import __version__
from gesco.errors import GescoError

#: sub-command modules, in the order they appear in ``gesco --help``
COMMAND_MODULES = [
    "gesco.commands.train",
    "gesco.commands.up",
    "gesco.commands.send",
    "gesco.commands.budget",
    "gesco.commands.evaluate",
    "gesco.commands.import_authors",
    "gesco.commands.certs",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gesco", description="Generative semantic communication simulator.")
    parser.add_argument("--version", action="version", version=f"gesco {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 1
    try:
        return int(args.handler(args) or 0)
    except GescoError as e:
        print(f"gesco {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
