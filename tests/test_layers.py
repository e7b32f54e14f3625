"""The package's layers, checked: no import cycle between modules, nothing imported upward.

Every module of the installed package is read with :mod:`ast`; every import of one of our
modules counts, at the top of a module, inside a function, or under ``TYPE_CHECKING`` (a
type-only import still couples a module to the layer it names). Imports of third-party
modules inside functions (Optuna, numpy, scipy: kept out of the driver and of a sim's
``from hpsearch import report``) are not ours and are not checked.

The allowed order, lowest first (a module imports only from its own layer or lower ones):

``errors`` < ``spec`` (+ the public ``space``) < ``runs``
< ``strategies`` | ``backends`` | ``tracking`` < ``engine``
< ``inspect`` | ``service`` < ``client`` < ``cli``

- ``errors``: what every layer uses and nothing of ours: the error types (``UsageError``,
  ``BackendError``) and the option declaration type (``options_decl``: a backend, the run
  policy and the search declare their settings with it).
- ``spec``: what a search is (grid modules, search files, config templates, values,
  distributions, the pruner declaration, the column names a config may not use). It knows
  nothing of runs: a spec is read before any run exists.
- ``runs``: one run (its model, its directory's files, the job wrapper, summaries, curves,
  the reporter, process-group stopping). It reads the spec's values, never a strategy or a
  backend: a run is what both of them exchange.
- ``strategies`` | ``backends``: siblings, neither imports the other. A strategy proposes
  configurations and never touches a backend; a backend runs :class:`Run` values and never
  asks a strategy.
- ``tracking``: a sibling of those two: the sinks that log ended runs to MLflow, TensorBoard
  or W&B; the engine calls them while a search runs, ``export`` after it ended.
- ``engine``: the search loop, which joins a strategy to a backend (driver, journal, lock,
  pruners, results, progress, launch).
- ``inspect`` | ``service``: siblings on top of the engine; they read a search directory or
  serve points, neither imports the other.
- ``client``: the public client of the service. It speaks the service's protocol (it may
  read its constants, such as the token's variable), the service never imports it: a
  layer of its own above ``service`` rather than the proposal's place beside it.
- ``cli``: on top; it may import anything.

The shims (``hpsearch/__init__``, ``hpsearch.worker``, ``hpsearch.objective_runner``,
``hpsearch.__main__``) import exactly what they re-export, named in :data:`SHIMS`; no module
of the package imports a shim.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import hpsearch

ROOT = Path(hpsearch.__file__).resolve().parent

#: Layers, lowest first; the layers of one tuple are siblings (neither imports the other).
ORDER: list[tuple[str, ...]] = [
    ("errors",), ("spec",), ("runs",), ("strategies", "backends", "tracking"), ("engine",),
    ("inspect", "service"), ("client",), ("cli",),
]

#: The layer of a module: the longest prefix in this table wins.
PLACE = {
    "hpsearch.errors": "errors",
    "hpsearch.options_decl": "errors",
    "hpsearch.spec": "spec",
    "hpsearch.space": "spec",
    "hpsearch.runs": "runs",
    "hpsearch.strategies": "strategies",
    "hpsearch.backends": "backends",
    "hpsearch.tracking": "tracking",
    "hpsearch.engine": "engine",
    "hpsearch.inspect": "inspect",
    "hpsearch.service": "service",
    "hpsearch.client": "client",
    "hpsearch.cli": "cli",
}

#: The shims, outside the layers, and the only modules each one may import (what it
#: re-exports or runs).
SHIMS = {
    "hpsearch": {"hpsearch.runs.reporter"},
    "hpsearch.__main__": {"hpsearch.cli.app"},
    "hpsearch.worker": {"hpsearch.backends.cluster.worker"},
    "hpsearch.objective_runner": {"hpsearch.runs.objective_runner"},
}



def module_name(path: Path) -> str:
    """``hpsearch/spec/gridmodule.py`` -> ``hpsearch.spec.gridmodule`` (a package: its name)."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imported(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """Our modules that one import statement loads: ``from hpsearch.spec import values``
    names the module ``hpsearch.spec.values``, ``from hpsearch.spec import X`` the package."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names if a.name.split(".")[0] == "hpsearch")
        return
    base = node.module or ""
    if node.level:  # relative: resolve against the importing module's package
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package.pop()
        package = package[:len(package) - node.level + 1]
        base = ".".join(package + ([base] if base else []))
    if base.split(".")[0] != "hpsearch":
        return
    for alias in node.names:
        full = f"{base}.{alias.name}"
        yield full if full in MODULES else base


def import_edges() -> dict[tuple[str, str], int]:
    """(importer, imported) -> the line of the first such import, over every module."""
    edges: dict[tuple[str, str], int] = {}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in imported(module, node):
                    if target != module:
                        edges.setdefault((module, target), node.lineno)
    return edges


def layer_of(module: str) -> str:
    """The layer of one of our modules (a shim is its own name)."""
    if module in SHIMS:
        return module
    prefixes = [p for p in PLACE if module == p or module.startswith(p + ".")]
    assert prefixes, f"{module} has no layer: add it to PLACE in {__file__}"
    return PLACE[max(prefixes, key=len)]


RANK = {name: rank for rank, names in enumerate(ORDER) for name in names}


def allowed(importer: str, target: str) -> bool:
    """May ``importer`` import ``target`` by the order above?"""
    if importer in SHIMS:
        return target in SHIMS[importer]
    if target in SHIMS:
        return False
    low, high = layer_of(target), layer_of(importer)
    return low == high or RANK[low] < RANK[high]


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    graph: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(edges):
        graph[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
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

    for node in sorted(MODULES):
        if node not in index:
            visit(node)
    return found


def describe(edge: tuple[str, str], edges: dict[tuple[str, str], int]) -> str:
    """``hpsearch/spec/gridmodule.py:12 -> hpsearch.runs.columns (spec -> runs)``."""
    importer, target = edge
    path = MODULES[importer].relative_to(ROOT.parent)
    return f"{path}:{edges[edge]} -> {target} ({layer_of(importer)} -> {layer_of(target)})"


def test_every_module_has_a_layer() -> None:
    """A new top-level module or sub-package is placed in the order on purpose."""
    for module in MODULES:
        layer_of(module)


def test_no_import_goes_up_or_sideways() -> None:
    """Each module imports only from its own layer or a lower one (siblings excluded)."""
    edges = import_edges()
    wrong = [describe(e, edges) for e in sorted(edges)
             if not allowed(*e)]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycle() -> None:
    """No two modules import each other, directly or around a loop (also through imports
    inside functions: such an import only hides a cycle)."""
    edges = import_edges()
    loops = cycles(set(edges))
    report = []
    for component in loops:
        inside = sorted(e for e in edges if e[0] in component and e[1] in component)
        report.append("cycle: " + ", ".join(component) + "\n  "
                      + "\n  ".join(describe(e, edges) for e in inside))
    assert not loops, "\n".join(report)


def test_every_module_opens_with_a_one_line_summary() -> None:
    """Each module's docstring starts with one line that says what the module owns, then a
    blank line before any detail (what ``help()`` and a listing of the package show)."""
    wrong = []
    for path in MODULES.values():
        doc = ast.get_docstring(ast.parse(path.read_text(), str(path)), clean=False)
        lines = (doc or "").split("\n")
        if not lines[0].strip() or (len(lines) > 1 and lines[1].strip()):
            wrong.append(f"{path.relative_to(ROOT.parent)}: {lines[0] or 'no docstring'}")
    assert not wrong, "docstrings without a one-line summary first:\n" + "\n".join(wrong)
