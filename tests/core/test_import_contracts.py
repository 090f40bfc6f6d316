"""The import contracts of ``pyproject.toml`` ([tool.importlinter], docs/architecture.md) hold,
and they can fail.

They replace the subprocess tests that imported 14 listed modules with the network
packages blocked: import-linter reads every import statement of every module (function-level
ones included) and follows chains, so a core module that reaches grpc through any other module
breaks the contract, listed or not. ``.ci/run`` runs ``lint-imports`` next to ruff; this test
runs it too, so a plain ``pytest`` catches a broken contract. A last test finds import
circles between modules (grimp, import-linter's graph builder), which no contract forbids.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` over the packages under ``root`` with ``root/pyproject.toml``."""
    exe = shutil.which("lint-imports", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    assert exe, "lint-imports not found: pip install -e '.[dev]' (import-linter)"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([exe, "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_contracts_hold():
    r = lint_imports(REPO)
    n = len(CONFIG["contracts"])
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert f"Contracts: {n} kept, 0 broken." in r.stdout


def test_the_contracts_cover_the_core_the_wing_and_the_services():
    assert set(CONFIG["root_packages"]) == {"gesco", "gesco_net", "sender", "channel", "receiver"}
    kinds = {c["type"]: c for c in CONFIG["contracts"]}
    assert {"grpc", "fastapi", "uvicorn", "httpx", "gesco_net", "sender", "channel", "receiver"} <= set(
        kinds["forbidden"]["forbidden_modules"])
    assert kinds["forbidden"]["source_modules"] == ["gesco"]
    assert set(kinds["independence"]["modules"]) == {"sender", "channel", "receiver"}
    layered = {name.strip() for layer in kinds["layers"]["layers"] for name in layer.replace(":", "|").split("|")}
    on_disk = {p.stem for p in (REPO / "gesco").iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert on_disk - layered == set(), "a package of gesco/ is in no layer of the contract"


def _module(root: Path, name: str, body: str = "") -> None:
    path = root.joinpath(*name.split("."))
    path.mkdir(parents=True, exist_ok=True)
    (path / "__init__.py").write_text(body)


@pytest.mark.parametrize("violation", ["network", "upward", "service"])
def test_each_contract_catches_its_violation(tmp_path, violation):
    """A miniature of the repository (one empty module per layer) with one bad import:
    a core module reaching httpx through another module, the wire format importing the link
    above it, the sender importing the channel service. Exactly that contract breaks."""
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for root in CONFIG["root_packages"]:
        _module(tmp_path, root)
    for layer in next(c for c in CONFIG["contracts"] if c["type"] == "layers")["layers"]:
        for name in layer.replace(":", "|").split("|"):
            _module(tmp_path, f"gesco.{name.strip()}")
    bad = {
        "network": ("gesco.codecs", "import gesco.uploads\n", "gesco.uploads", "import httpx\n"),
        "upward": ("gesco.wire", "from gesco.link import x\n", None, None),
        "service": ("sender", "import channel\n", None, None),
    }[violation]
    _module(tmp_path, bad[0], bad[1])
    if bad[2]:
        _module(tmp_path, bad[2], bad[3])
    r = lint_imports(tmp_path)
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-2000:]
    assert "1 broken." in r.stdout, r.stdout[-4000:]
    expected = {"network": "gesco is not allowed to import httpx",
                "upward": "gesco.wire is not allowed to import gesco.link",
                "service": "sender is not allowed to import channel"}[violation]
    assert expected in " ".join(r.stdout.split()), r.stdout[-4000:]


def import_cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan) of a grimp graph."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for m in edges:
        if m not in index:
            visit(m)
    return cycles


def test_no_module_imports_itself_through_others(monkeypatch):
    """No import circle between modules, function-level imports included (e.g. a backend that
    imports the interface whose factory imports the backend)."""
    import grimp

    monkeypatch.syspath_prepend(str(REPO))
    graph = grimp.build_graph(*CONFIG["root_packages"], cache_dir=None)
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    for name, body in {"loop": "", "loop.a": "from loop import b\n", "loop.b": "def f():\n    from loop import a\n"}.items():
        _module(tmp_path, name, body)
    monkeypatch.syspath_prepend(str(tmp_path))
    import grimp

    assert import_cycles(grimp.build_graph("loop", cache_dir=None)) == [["loop.a", "loop.b"]]
