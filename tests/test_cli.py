"""The ``gesco`` command line: building the parser must not import torch (``gesco --help`` < 0.5 s).

The installed ``gesco`` is :mod:`gesco_net.cli` (every command); :mod:`gesco.cli` is the core's
part of it (the commands that need no network stack, ``python -m gesco.cli``).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

#: modules that take seconds to import; none may be needed to build the parser
HEAVY = ("torch", "cv2", "grpc", "fastapi", "scipy", "matplotlib")


def test_building_the_parser_imports_no_heavy_module():
    code = (
        "import sys, gesco_net.cli\n"
        "parser = gesco_net.cli.build_parser()\n"
        "names = {a.dest for a in parser._actions}\n"
        "assert 'command' in names, names\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"building the parser imported {out.stdout.strip()}"


def _commands(parser) -> set[str]:
    return set(next(a for a in parser._actions if a.dest == "command").choices)


def test_every_command_is_registered():
    from gesco_net.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"train", "up", "send", "budget", "evaluate", "import", "certs"}
    train = next(a for a in sub.choices["train"]._actions if a.dest == "what")
    assert set(train.choices) == {"diffusion", "distill", "segmenter"}


@pytest.mark.parametrize("argv", [["--help"], ["send", "--help"], ["up", "--help"]])
def test_help_exits_zero_without_torch(argv):
    code = (f"import sys, gesco_net.cli\ntry:\n    gesco_net.cli.main({argv!r})\nexcept SystemExit as e:\n"
            "    assert e.code == 0\nassert 'torch' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage: gesco" in out.stdout


def test_the_core_cli_offers_the_core_commands_without_the_wing():
    """``python -m gesco.cli`` (e.g. under torchrun) has every command but the wing's, and
    building its parser loads no module of the wing; the full CLI is the core's plus the wing's."""
    import gesco.cli
    import gesco_net.cli

    assert _commands(gesco.cli.build_parser()) == {"train", "budget", "evaluate", "import"}
    assert _commands(gesco_net.cli.build_parser()) == _commands(gesco.cli.build_parser()) | {"up", "send", "certs"}
    code = ("import sys, gesco.cli; gesco.cli.build_parser()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gesco_net', 'sender', 'channel', 'receiver')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_core_cli_names_the_installed_command_for_a_wing_command(capsys):
    """``python -m gesco.cli up`` is refused by argparse (exit 2), not silently ignored."""
    import gesco.cli

    with pytest.raises(SystemExit) as e:
        gesco.cli.main(["up"])
    assert e.value.code == 2
    assert "invalid choice: 'up'" in capsys.readouterr().err
