"""The core of the ``gesco`` command line: the commands that need no network stack.

Each sub-command lives in its own module and registers itself with
``register(subparsers)``; its handler returns the process exit code. Errors that come
from user input (:class:`gesco.errors.GescoError`) are printed as one line and exit with
status 2; anything else is a bug and shows its traceback.

The installed ``gesco`` command is :func:`gesco_net.cli.main`: it offers these commands
plus the network wing's (``up``, ``send``, ``certs``), built with :func:`build_parser` and
run by :func:`run`. The rule (docs/architecture.md, pinned by the import contract in
``pyproject.toml``): a command that speaks HTTP or gRPC lives in ``gesco_net.commands``,
every other one in :mod:`gesco.commands`; the core never imports the wing.
``python -m gesco.cli`` runs the core commands alone (e.g. ``torchrun -m gesco.cli train``),
without loading grpc, fastapi or uvicorn.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gesco import __version__
from gesco.errors import GescoError

#: the core's sub-command modules, in the order they appear in ``gesco --help``
COMMAND_MODULES = [
    "gesco.commands.train",
    "gesco.commands.budget",
    "gesco.commands.evaluate",
    "gesco.commands.import_authors",
]


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """The ``gesco`` argument parser with one sub-command per module of ``modules``."""
    parser = argparse.ArgumentParser(prog="gesco", description="Generative semantic communication simulator.")
    parser.add_argument("--version", action="version", version=f"gesco {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` with ``parser`` and run the chosen handler; returns the exit code."""
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


def main(argv: list[str] | None = None) -> int:
    """The core commands alone (``python -m gesco.cli``); the installed ``gesco`` is :func:`gesco_net.cli.main`."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
