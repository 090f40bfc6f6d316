"""The installed ``gesco`` command: the core's commands plus the network wing's.

The core commands (``train``, ``budget``, ``evaluate``, ``import``) live in
:mod:`gesco.commands` and run without any network package; the commands that start or
talk to the services (``up``, ``send``, ``certs``) live in :mod:`gesco_net.commands`.
This module is the one place that joins the two lists (the core never imports the
wing: docs/architecture.md); :func:`gesco.cli.run` does the parsing and error handling.
"""

from __future__ import annotations

import sys

from gesco import cli as core_cli

#: the wing's sub-command modules (each needs the network stack)
WING_COMMAND_MODULES = [
    "gesco_net.commands.up",
    "gesco_net.commands.send",
    "gesco_net.commands.certs",
]
#: every sub-command module, in the order they appear in ``gesco --help``: the core's, then the wing's
COMMAND_MODULES = [*core_cli.COMMAND_MODULES, *WING_COMMAND_MODULES]


def build_parser():
    """The full ``gesco`` parser (:func:`gesco.cli.build_parser` over :data:`COMMAND_MODULES`)."""
    return core_cli.build_parser(COMMAND_MODULES)


def main(argv: list[str] | None = None) -> int:
    return core_cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
