"""The ``gesco`` command line: building the parser must not import torch (``gesco --help`` < 0.5 s)."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: modules that take seconds to import; none may be needed to build the parser
HEAVY = ("torch", "cv2", "grpc", "fastapi", "scipy", "matplotlib")


def test_building_the_parser_imports_no_heavy_module():
    code = (
        "import sys, gesco.cli\n"
        "parser = gesco.cli.build_parser()\n"
        "names = {a.dest for a in parser._actions}\n"
        "assert 'command' in names, names\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"building the parser imported {out.stdout.strip()}"


def test_every_command_is_registered():
    from gesco.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"train", "up", "send", "budget", "evaluate"} <= set(sub.choices)
    train = next(a for a in sub.choices["train"]._actions if a.dest == "what")
    assert set(train.choices) == {"diffusion", "distill", "segmenter"}


@pytest.mark.parametrize("argv", [["--help"], ["send", "--help"], ["up", "--help"]])
def test_help_exits_zero_without_torch(argv):
    code = (f"import sys, gesco.cli\ntry:\n    gesco.cli.main({argv!r})\nexcept SystemExit as e:\n"
            "    assert e.code == 0\nassert 'torch' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage: gesco" in out.stdout
