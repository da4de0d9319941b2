"""Print the import cycles among gscli's modules, counting every import: top level, inside functions,
under ``TYPE_CHECKING`` and lazy ones alike. Exit 0 when there are none, 1 otherwise.

    python scripts/import_cycles.py [--graph] [--package DIR]

Reads the source with ``ast`` (nothing is imported); ``importlib.import_module`` of a constant, or
of an f-string whose constant prefix plus a string of the same module names a module, counts too. An edge goes to the module an import names:
``from gscli.nn import GroupDownsample`` depends on the package ``gscli.nn`` (its ``__init__``),
``from gscli.nn import _layer`` and ``import gscli.nn._layer`` on ``gscli.nn._layer``. The parent
packages that Python initialises on the way are not counted (as in grimp and import-linter).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "gscli"


def modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package in ``package_dir`` by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _targets(name: str, known: dict[str, Path]) -> set[str]:
    """``{name}`` if it is a module of the package, else nothing."""
    return {name} if name in known else set()


def _dynamic(call: ast.Call, strings: set[str], known: dict[str, Path]) -> set[str]:
    """``import_module("gscli.x")``, or ``import_module(f"gscli.scale.{table[name]}")``: every module
    that the constant prefix followed by a string of the same source names."""
    if not call.args:
        return set()
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return _targets(arg.value, known)
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        prefix = str(arg.values[0].value)
        return {f"{prefix}{s}" for s in strings if f"{prefix}{s}" in known}
    return set()


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules that ``module`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    edges: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "import_module":
            edges |= _dynamic(node, strings, known)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                edges |= _targets(alias.name, known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != module.split(".")[0]:
                continue
            for alias in node.names:  # ``from gscli.nn import _layer`` names a submodule
                edges |= _targets(f"{source}.{alias.name}", known) or _targets(source, known)
    edges.discard(module)
    return edges


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", action="store_true", help="also print every module's imports")
    parser.add_argument("--package", type=Path, default=PACKAGE_DIR, help="the package folder (default: gscli)")
    args = parser.parse_args()
    known = modules(args.package)
    graph = {name: imports(name, path, known) for name, path in known.items()}
    if args.graph:
        for name in sorted(graph):
            print(f"{name}: {', '.join(sorted(graph[name])) or '-'}")
    cycles = strongly_connected(graph)
    for component in cycles:
        print(f"cycle among {len(component)} modules: {', '.join(component)}")
    print(f"{len(cycles)} import cycle(s) among {len(known)} modules")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
