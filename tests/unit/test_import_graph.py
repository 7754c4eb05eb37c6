"""The shape of the code, checked: no import circles, a pure domain.

Every import counts, wherever it is written (inside a function, under
TYPE_CHECKING): an import moved into a function to dodge a circle is still a
circle in the design. `from package import name` is an edge to the submodule
when `name` is one, else to the package itself.

The domain packages (`services/*/domain/`) may import the standard library,
their own service's domain, the pure modules of `shared/` (no I/O, no
clients) and numpy (array arithmetic): nothing else, not even their own
service's other packages.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
PACKAGES: Final = ("services", "shared")
# shared/ modules a domain may import: definitions and arithmetic, no I/O.
PURE_SHARED: Final = frozenset({"shared.access", "shared.events", "shared.hashrate", "shared.metric_envelopes",
                              "shared.labels", "shared.text", "shared.durations", "shared.confidence"})
# Third-party packages a domain may import: arithmetic on arrays, no I/O.
PURE_THIRD_PARTY: Final = frozenset({"numpy"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, node, is_package)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), node.lineno


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {
        module: {target for target, _ in imports_of(module, path, known) if target in known and target != module}
        for module, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def domain_violations() -> list[str]:
    modules = project_modules()
    known = set(modules)
    found = []
    for module, path in modules.items():
        parts = module.split(".")
        if len(parts) < 3 or parts[0] != "services" or parts[2] != "domain":
            continue
        own_domain = ".".join(parts[:3])
        for target, line in imports_of(module, path, known):
            top = target.split(".")[0]
            if target == "__future__" or top in sys.stdlib_module_names and top not in PACKAGES:
                continue
            if target == own_domain or target.startswith(own_domain + "."):
                continue
            if target in PURE_SHARED or top in PURE_THIRD_PARTY:
                continue
            found.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    return found


# --- the checker itself ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_cycles_finds_every_circle(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert sorted(cycles(graph)) == expected


def test_imports_resolve_relative_and_submodules(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from . import sibling\nfrom ..other import thing\nimport json\n"
        "def late():\n    from .sibling import x\n"
    )
    known = {"pkg.sub.sibling", "pkg.other"}
    found = [target for target, _ in imports_of("pkg.sub.mod", source, known)]
    assert found == ["pkg.sub.sibling", "pkg.other", "json", "pkg.sub.sibling"]


# --- the project ---------------------------------------------------------------------------

def test_no_import_circles_in_services_or_shared() -> None:
    assert cycles(import_graph()) == []


def test_domains_import_only_the_standard_library_and_pure_shared_modules() -> None:
    assert domain_violations() == []
