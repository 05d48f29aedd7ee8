"""The import rule (issue 13): areas depend downward only, read from the source with :mod:`ast`.

    aipc.cli, aipc.__main__  ->  areas {build (wheelbuild), verify, bench, doctor, npu}  ->  shared (everything else:
    runtimes, platforms, proc, pins, wheelhouse, venvs, runner, fsutil, errors, ...)

- an area imports itself and shared modules only, never another area nor the command line;
- a shared module imports no area and not the command line;
- ``aipc/workers/*.py`` are scripts run in the runtimes' venvs: they import nothing of aipc, and aipc imports none of
  them as a module;
- modules are imported by name, not by string: ``importlib.import_module``/``__import__`` only in ``aipc.cli`` (its
  ``AREAS``).

Every import counts: top-level, inside functions (lazy), under ``if TYPE_CHECKING:``, relative or absolute.
``KNOWN`` lists the violations main still has; the test fails on a violation not listed there and on a listed one
that no longer occurs, so whoever removes one deletes its line here in the same commit.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import aipc
import aipc.cli

SRC = Path(aipc.__file__).resolve().parent
TOP = frozenset({"aipc.cli", "aipc.__main__"})
# the areas: cli -> these -> the shared modules (everything else); no area imports another
AREAS = frozenset({"wheelbuild", "verify", "bench", "doctor", "npu"})
STRING_IMPORTERS = frozenset({"aipc.cli"})

# (importer, imported) pairs that break the rule on main today; each goes with the code that makes it.
KNOWN: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Violation:
    importer: str
    imported: str
    where: str  # file:line
    why: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.importer, self.imported)

    def __str__(self) -> str:
        return f"{self.where}: {self.importer} imports {self.imported} ({self.why})"


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["aipc", *parts])


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _exists(name: str, src: Path) -> bool:
    """Whether ``name`` (aipc.x.y) is a module or package under ``src``."""
    rel = Path(*name.split(".")[1:]) if name != "aipc" else Path()
    return (src / rel).with_suffix(".py").is_file() or (src / rel / "__init__.py").is_file()


def imports_of(path: Path, src: Path = SRC) -> list[tuple[str, int]]:
    """Every aipc module ``path`` imports (absolute names, with the line), lazy and relative imports included.

    ``from pkg import name`` counts as ``pkg.name`` when that is a module, else as ``pkg``. String imports come back
    as ``importlib:<name>`` (``<name>`` is ``?`` when the argument is not a constant).
    """
    me = module_name(path, src)
    package = me if _is_package(path) else me.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == "aipc"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != "aipc":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub if _exists(sub, src) else target, node.lineno))
        elif isinstance(node, ast.Call) and _is_string_import(node.func):
            arg = node.args[0] if node.args else None
            name = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else "?"
            found.append((f"importlib:{name}", node.lineno))
    return list(dict.fromkeys(found))  # ``from x import a, b``: one entry per module and line


def _is_string_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module" or func.attr == "__import__"
    return isinstance(func, ast.Name) and func.id in {"import_module", "__import__"}


def layer(name: str) -> str:
    """``top``, ``workers``, ``area:<name>`` or ``shared``."""
    if name in TOP:
        return "top"
    parts = name.split(".")
    if len(parts) > 1 and parts[1] == "workers":
        return "workers"
    if len(parts) > 1 and parts[1] in AREAS:
        return f"area:{'build' if parts[1] == 'wheelbuild' else parts[1]}"
    return "shared"


def check(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None when it may."""
    if imported.startswith("importlib:"):
        return None if importer in STRING_IMPORTERS else "a string import: import the module by name"
    mine, theirs = layer(importer), layer(imported)
    if mine == "workers":
        return "workers are scripts run in the runtimes' venvs and import nothing of aipc"
    if theirs == "workers":
        return "workers are scripts, run by path, never imported"
    if theirs == "top":
        return None if mine == "top" else "nothing imports the command line"
    if mine == "top" or theirs == "shared" or mine == theirs:
        return None
    if mine == "shared":
        return f"a shared module imports the {theirs[5:]} area"
    return f"the {mine[5:]} area imports the {theirs[5:]} area"


def violations(src: Path = SRC) -> list[Violation]:
    found: list[Violation] = []
    for path in sorted(src.rglob("*.py")):
        importer = module_name(path, src)
        rel = path.relative_to(src.parent)
        if layer(importer) == "workers":
            found += _worker_violations(path, importer, rel)
            continue
        for imported, line in imports_of(path, src):
            why = check(importer, imported)
            if why:
                found.append(Violation(importer, imported, f"{rel}:{line}", why))
    return found


def _worker_violations(path: Path, importer: str, rel: Path) -> list[Violation]:
    """A worker imports no aipc module, relative or absolute (its sibling scripts come in by plain name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Violation] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or "")] if node.level else [node.module or ""]
        for name in names:
            if name.startswith(".") or name.split(".")[0] == "aipc":
                why = "workers are scripts run in the runtimes' venvs and import nothing of aipc"
                found.append(Violation(importer, name, f"{rel}:{node.lineno}", why))
    return found


def test_no_new_violation() -> None:
    new = [str(v) for v in violations() if v.key not in KNOWN]
    assert not new, "imports against the layer rule (see this file's docstring):\n" + "\n".join(new)


def test_known_violations_still_occur() -> None:
    """A KNOWN entry whose import is gone must be deleted, so the list shrinks to empty and stays there."""
    left = {v.key for v in violations()}
    gone = sorted(KNOWN - left)
    assert not gone, "no longer violated; delete from KNOWN in tests/test_layers.py: " + ", ".join(map(str, gone))


def test_cli_areas_are_areas() -> None:
    """The string imports cli.py is allowed are the areas' own command modules."""
    for name in aipc.cli.AREAS:
        assert layer(name).startswith("area:"), name
        assert _exists(name, SRC), name


# --- the checker itself, on a small fake tree (so a rule that never fires cannot pass unnoticed) ---


def _write(root: Path, rel: str, text: str) -> None:
    path = root / "aipc" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    for parent in path.relative_to(root / "aipc").parents:
        init = root / "aipc" / parent / "__init__.py"
        if not init.exists():
            init.write_text("", encoding="utf-8")


@pytest.fixture
def fake_src(tmp_path: Path) -> Path:
    _write(tmp_path, "cli.py", "import importlib\nfrom .verify import cli\nimportlib.import_module('aipc.bench.cli')\n")
    _write(tmp_path, "proc.py", "import subprocess\n")
    _write(tmp_path, "runtimes/base.py", "from ..proc import run\n")
    _write(tmp_path, "verify/cli.py", "from . import run\nfrom ..runtimes import base\nfrom aipc.proc import run\n")
    _write(tmp_path, "verify/run.py", "def f():\n    from ..bench.stats import mean\n")
    _write(tmp_path, "bench/cli.py", "from aipc import cli\n")
    _write(tmp_path, "bench/stats.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import aipc.doctor\n")
    _write(tmp_path, "doctor/__init__.py", "")
    _write(tmp_path, "runtimes/npu.py", "import importlib\nm = importlib.import_module('aipc.npu.build')\n")
    _write(tmp_path, "npu/build.py", "from aipc.workers import devices\n")
    _write(tmp_path, "workers/devices.py", "import os\nfrom protocol import serve\n")
    _write(tmp_path, "workers/smoke.py", "from aipc.errors import AipcError\nfrom . import devices\n")
    return tmp_path / "aipc"


def test_checker_finds_each_kind(fake_src: Path) -> None:
    got = {(v.importer, v.imported): v.why for v in violations(fake_src)}
    assert got == {
        ("aipc.verify.run", "aipc.bench.stats"): "the verify area imports the bench area",
        ("aipc.bench.cli", "aipc.cli"): "nothing imports the command line",
        ("aipc.bench.stats", "aipc.doctor"): "the bench area imports the doctor area",
        ("aipc.runtimes.npu", "importlib:aipc.npu.build"): "a string import: import the module by name",
        ("aipc.npu.build", "aipc.workers.devices"): "workers are scripts, run by path, never imported",
        ("aipc.workers.smoke", "aipc.errors"): "workers are scripts run in the runtimes' venvs and import nothing "
        "of aipc",
        ("aipc.workers.smoke", "."): "workers are scripts run in the runtimes' venvs and import nothing of aipc",
    }


def test_checker_resolves_relative_imports(fake_src: Path) -> None:
    assert sorted(imports_of(fake_src / "verify" / "cli.py", fake_src)) == [
        ("aipc.proc", 3),
        ("aipc.runtimes.base", 2),
        ("aipc.verify.run", 1),
    ]
    assert imports_of(fake_src / "verify" / "run.py", fake_src) == [("aipc.bench.stats", 2)]


def test_shared_may_not_import_an_area() -> None:
    assert check("aipc.runtimes.devices", "aipc.doctor.windows") == "a shared module imports the doctor area"
    assert check("aipc.wheelbuild.stage", "aipc.wheelbuild.ortcheck") is None  # one area under either name
    assert check("aipc.cli", "aipc.npu.cli") is None
    assert check("aipc.__main__", "aipc.cli") is None
