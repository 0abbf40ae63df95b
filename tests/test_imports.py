"""The package's shape: private modules stay inside their package, and no part
imports a part that imports it back.

Imports are read from the source (every ``import`` statement, at module level
or inside a function, except under ``if TYPE_CHECKING:``), so a cycle hidden
behind a lazy import is found too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import enduro

SRC = Path(enduro.__file__).parent
ROOT = "enduro"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}
PACKAGES = {_module_name(p) for p in SRC.rglob("__init__.py")}


def _package_of(module: str) -> str:
    return module if module in PACKAGES else module.rpartition(".")[0]


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> Iterator[str]:
    """The enduro modules ``module`` imports (``from pkg import sub`` counts as
    importing ``pkg.sub`` when that is a module, else ``pkg``)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _type_checking_only(node)
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    package = _package_of(module)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == ROOT:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != ROOT:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield sub if sub in MODULES else target


def _private_part(module: str) -> str | None:
    """The private module ``module`` is or lies in (``enduro.recovery._halt``), if any."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_"):
            return ".".join(parts[: i + 1])
    return None


def test_the_walk_finds_the_package() -> None:
    assert {"enduro.runner", "enduro.store", "enduro.store._schema"} <= set(MODULES)
    assert "enduro.store._schema" in set(_imports("enduro.store._sql"))


def test_no_module_imports_another_packages_private_module() -> None:
    """``enduro.recovery._halt`` may be imported inside ``enduro.recovery`` only;
    everyone else goes through ``enduro.recovery``'s public names. (The root's
    own private modules, ``enduro._secrets``, serve every part of enduro.)"""
    wrong = []
    for module in MODULES:
        for target in _imports(module):
            private = _private_part(target)
            if private is None:
                continue
            owner = private.rpartition(".")[0]
            if not (module == owner or module.startswith(owner + ".")):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _part(module: str) -> str:
    """The part of enduro a module belongs to: its subpackage, or itself for the
    top-level modules (``enduro.job``, ``enduro.runner``, ...)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_the_parts_of_enduro_import_each_other_without_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        for target in _imports(module):
            if _part(target) != _part(module) and _part(target) != ROOT:
                graph.setdefault(_part(module), set()).add(_part(target))
    assert _cycles(graph) == []


@pytest.mark.parametrize("part", sorted({_part(m) for m in MODULES if _part(m) in PACKAGES}))
def test_no_module_cycles_inside_a_part(part: str) -> None:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        if _part(module) != part:
            continue
        for target in _imports(module):
            # a package's __init__ importing its own modules is how it re-exports
            if _part(target) == part and target != _package_of(module):
                graph.setdefault(module, set()).add(target)
    assert _cycles(graph) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        for target in _imports(module):
            if _part(target) != _part(module):
                graph.setdefault(_part(module), set()).add(_part(target))
    return graph


def _short(part: str) -> str:
    return "enduro" if part == ROOT else part.removeprefix(ROOT + ".")


def test_architecture_md_draws_the_imports_as_they_are() -> None:
    """ARCHITECTURE.md's "who imports whom" block: one line per part, every
    arrow an import and every import an arrow."""
    text = (SRC.parent.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = text.split("Who imports whom", 1)[1].split("```", 2)[1]
    drawn = {}
    for line in block.strip().splitlines():
        part, _, targets = line.partition(" ──→ ")
        drawn[part.strip()] = {t.strip() for t in targets.split(",") if t.strip()}
    actual = {_short(part): {_short(t) for t in targets} for part, targets in _part_graph().items()}
    assert drawn == actual


def test_architecture_md_names_modules_that_exist() -> None:
    text = (SRC.parent.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:[a-z_]+/)+[a-z_]+\.py|[a-z_]+\.py)`", text))
    repo = SRC.parent.parent
    missing = [
        path
        for path in sorted(named)
        if not (repo / path if path.startswith("tests/") else SRC / path).exists()
    ]
    assert named and missing == []


def test_no_module_is_over_600_lines() -> None:
    """Past ~600 lines a module is split along a real seam (STYLE.md)."""
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long == {}
