"""``pip install .`` (the README's main job, the Docker image) brings every module the
services and the command line import at start-up: each third-party module imported at
module level by the code reachable from them is a core dependency in pyproject.toml, not
only an extra. (A module-level ``from scipy import ndimage`` with scipy only in ``[dev]``
once broke the image's build while every test passed.)"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("gesco", "gesco_net", "sender", "channel", "receiver")
#: what runs on `pip install .`: the three services (the Dockerfile imports these) and the CLI
ENTRY_MODULES = ("sender.app", "channel.server", "receiver.service", "gesco_net.cli", "gesco.link")


def module_file(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def top_level_imports(path: Path, name: str) -> set[str]:
    """Modules imported by statements directly in the module body (not in functions, try or if)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names if module_file(f"{mod}.{a.name}")}
    return out


def start_up_imports() -> set[str]:
    """Third-party top-level modules imported at start-up by the entry modules, transitively."""
    seen, todo, third = set(), list(ENTRY_MODULES), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        assert path is not None, f"{name} not found in the repository"
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        for mod in top_level_imports(path, name) | set(parents):
            root = mod.split(".")[0]
            if root in FIRST_PARTY:
                if module_file(mod):
                    todo.append(mod)
            elif root and root not in sys.stdlib_module_names and root != "__future__":
                third.add(root)
    return third


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; (]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def core_dependencies() -> set[str]:
    """The [project] dependencies and, installed with them, their own (non-extra) requirements."""
    from importlib.metadata import PackageNotFoundError, requires

    todo = [_name(d) for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]]
    out: set[str] = set()
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [_name(r) for r in reqs if "extra ==" not in r and "extra==" not in r]
    return out


def test_every_start_up_import_is_a_core_dependency():
    dists = packages_distributions()
    core = core_dependencies()
    missing = {}
    for module in sorted(start_up_imports()):
        names = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        assert names, f"{module} is imported at start-up but no installed distribution provides it"
        if not names & core:
            missing[module] = sorted(names)
    assert not missing, f"imported at start-up but not in [project] dependencies: {missing}"


def test_the_walk_sees_the_known_imports():
    found = start_up_imports()
    assert {"numpy", "torch", "grpc", "fastapi", "pydantic", "scipy"} <= found, found
