"""The import graph keeps the layers apart: engine ← shared server core ← API/services and worker,
the web UI a pure HTTP client, and no import cycles.

Read from the source with :mod:`ast`, never by importing it. Every ``import`` and
``from … import`` statement counts, wherever it stands (module level, inside functions or
classes, under ``try``), except those in the body of ``if TYPE_CHECKING:`` (or
``if typing.TYPE_CHECKING:``), which never run. Relative imports are made absolute first.

Layer rules (:data:`RULES`), on the module each statement names: ``import a.b`` names
``a.b``; ``from a.b import c`` names ``a.b.c`` when that is a module of the project, else ``a.b``.

* ``engine``: nothing under ``kmine/`` imports ``server``, ``worker`` or ``webui``.
* ``webui``: ``webui/`` imports only the standard library, its HTTP client's and drawing
  libraries (:data:`WEBUI_ALLOWED`) and ``webui.*``.
* ``worker``: ``worker/`` imports from ``server`` only ``server.core`` (the shared layer).
* ``server-core``: ``server/core/`` imports neither ``server.api`` nor ``server.services``.
* ``server``: ``server/`` imports ``worker`` or ``webui`` only in ``server/cli.py``, the
  console script's composition root (serve + worker + UI).

Cycles (among the project's own modules), on a graph of what running each import executes:

1. A statement's edge goes to the module it names (as above), with names re-exported by a
   package's ``__init__`` followed to the module that defines them: ``from kmine.teacher import
   Teacher``, where ``kmine/teacher/__init__.py`` has ``from kmine.teacher.base import Teacher``,
   is an edge to ``kmine.teacher.base`` (followed through further re-exports; a name the
   ``__init__`` defines itself, or that cannot be traced, stays an edge to the package).
   A lazy package (:mod:`kmine._lazy`, PEP 562) re-exports the names it imports under a
   top-level ``if TYPE_CHECKING:``: its ``__getattr__`` imports them from there on first use
   (``tests/test_cli_help.py`` holds the two equal), so they are followed the same way, while
   the ``__init__`` itself, which runs none of those imports, gets no edges from them.
2. Importing ``a.b.c`` first runs the ``__init__`` of ``a`` and ``a.b``, and ``from pkg import
   name`` runs ``pkg/__init__.py`` even when ``name`` comes from elsewhere: the importing module
   also gets edges to the named module and to every package above it or above the defining one.
3. Edges from a module to its own ancestor packages are dropped: Python has started
   running those ``__init__`` files before the submodule runs, so they add no order, and a
   package whose ``__init__`` re-exports its submodules is not a cycle with them. (After 1, a
   submodule importing a re-exported name from its own package points at the defining sibling,
   so a real cycle through the ``__init__`` is still seen.)

Each cycle reported is one strongly connected component, shown as a loop through it with
the file and line of every edge on the loop, then the component's other edges.
"""

from __future__ import annotations

import ast
import sys
import textwrap
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kmine", "server", "worker", "webui")
WEBUI_ALLOWED = {"httpx", "gradio", "fastapi", "uvicorn", "numpy", "PIL", "matplotlib", "pandas"}
STDLIB = set(sys.stdlib_module_names)


@dataclass(frozen=True)
class Edge:
    source: str  # the importing module
    target: str  # the module the statement names (see the module docstring)
    resolved: str  # ``target`` with re-exports followed (project modules only)
    path: str  # the importing file, relative to the tree's root
    line: int
    text: str  # the statement

    def __str__(self) -> str:
        shown = self.target if self.resolved == self.target else f"{self.target} (→ {self.resolved})"
        return f"{self.path}:{self.line}: {self.source} → {shown}   [{self.text}]"


@dataclass
class ImportGraph:
    root: Path
    modules: dict[str, Path]  # module name → file
    edges: list[Edge] = field(default_factory=list)

    def project_module(self, name: str) -> str | None:
        """The longest prefix of ``name`` that is a module of the project (None: not ours)."""
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            candidate = ".".join(parts[:i])
            if candidate in self.modules:
                return candidate
        return None


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_statements(tree: ast.AST):
    """Every Import/ImportFrom node, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module of a ``from`` statement (relative levels resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _reexports(graph: ImportGraph, package: str, cache: dict) -> dict[str, tuple[str, str | None]]:
    """Names a package's ``__init__`` binds by top-level imports, or re-exports lazily by the
    imports under a top-level ``if TYPE_CHECKING:`` → (the module they come from, their name
    there): ``from X import n`` → (X.n, None) if that is a module, else (X, n); ``import X as n``
    → (X, None)."""
    if package in cache:
        return cache[package]
    cache[package] = found = {}
    path = graph.modules[package]
    if path.name != "__init__.py":
        return found
    body = ast.parse(path.read_text(), str(path)).body
    lazy = [n for node in body if isinstance(node, ast.If) and _is_type_checking(node.test) for n in node.body]
    for node in lazy + body:  # an eager import of the same name wins: it is what runs
        if isinstance(node, ast.ImportFrom):
            base = _absolute(package, True, node)
            for alias in node.names:
                if alias.name != "*":
                    sub = f"{base}.{alias.name}"
                    found[alias.asname or alias.name] = (sub, None) if sub in graph.modules else (base, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = (alias.name, None)
    return found


def _follow(graph: ImportGraph, module: str, name: str | None, cache: dict) -> str:
    """The module that defines ``name`` imported from ``module`` (a project module)."""
    seen = set()
    while name is not None and (module, name) not in seen:
        seen.add((module, name))
        origin = _reexports(graph, module, cache).get(name)
        if origin is None:
            break
        target, name = origin
        owner = graph.project_module(target)
        if owner is None:
            break
        if owner != target:  # e.g. a name of a module whose file we lack: stay where we are
            break
        module = target
        if graph.modules[module].name != "__init__.py":
            break
    return module


def build_graph(root: Path, packages=PACKAGES) -> ImportGraph:
    files = sorted(p for pkg in packages if (root / pkg).is_dir() for p in (root / pkg).rglob("*.py"))
    graph = ImportGraph(root, {_module_name(root, p): p for p in files})
    cache: dict = {}
    for name, path in graph.modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        rel = str(path.relative_to(root))
        for node in _import_statements(tree):
            text = ast.unparse(node)
            if isinstance(node, ast.Import):
                named = [(alias.name, None) for alias in node.names]
            else:
                base = _absolute(name, is_package, node)
                named = []
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if alias.name != "*" and graph.project_module(sub) == sub:
                        named.append((sub, None))
                    else:
                        named.append((base, None if alias.name == "*" else alias.name))
            edges = {}
            for target, imported in named:
                ours = graph.project_module(target)
                resolved = ours
                if ours is not None and ours == target and imported is not None:
                    resolved = _follow(graph, ours, imported, cache)
                edges[(target, resolved or target)] = None  # one edge per statement and module
            graph.edges += [Edge(name, target, resolved, rel, node.lineno, text) for target, resolved in edges]
    graph.edges.sort(key=lambda e: (e.path, e.line, e.target, e.resolved))
    return graph


def _top(name: str) -> str:
    return name.split(".")[0]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


# Each rule: (name, what it forbids, offending(edge) -> bool).
RULES = {
    "engine": (
        "kmine/ imports server, worker or webui",
        lambda e: _top(e.source) == "kmine" and _top(e.target) in {"server", "worker", "webui"},
    ),
    "webui": (
        f"webui/ imports something other than the standard library, {', '.join(sorted(WEBUI_ALLOWED))} and webui.*",
        lambda e: _top(e.source) == "webui" and _top(e.target) not in STDLIB | WEBUI_ALLOWED | {"webui"},
    ),
    "worker": (
        "worker/ imports from server something other than server.core",
        lambda e: _top(e.source) == "worker" and _top(e.target) == "server" and not _under(e.target, "server.core"),
    ),
    "server-core": (
        "server/core/ imports server.api or server.services",
        lambda e: _under(e.source, "server.core") and (_under(e.target, "server.api") or _under(e.target, "server.services")),
    ),
    "server": (
        "server/ imports worker or webui outside server/cli.py",
        lambda e: _top(e.source) == "server" and e.source != "server.cli" and _top(e.target) in {"worker", "webui"},
    ),
}


def rule_violations(graph: ImportGraph, rule: str) -> list[Edge]:
    offending = RULES[rule][1]
    return [e for e in graph.edges if offending(e)]


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def cycle_edges(graph: ImportGraph) -> dict[str, dict[str, list[Edge]]]:
    """The graph the cycle check walks: source → target → the edges (statements) behind it."""
    adj: dict[str, dict[str, list[Edge]]] = {m: {} for m in graph.modules}
    for e in graph.edges:
        named = graph.project_module(e.target)
        if named is None:
            continue
        own = set(_ancestors(e.source))
        # What the statement runs: the module it names and the one defining the name it takes,
        # each after its ancestor packages' __init__ (importing a.b.c runs a and a.b first).
        runs = dict.fromkeys([*_ancestors(named), named, *_ancestors(e.resolved), e.resolved])
        for target in runs:
            if target != e.source and target not in own and target in graph.modules:
                adj[e.source].setdefault(target, []).append(e)
    return adj


def find_cycles(graph: ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    adj = cycle_edges(graph)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(adj):
        if start in index:
            continue
        work = [(start, iter(sorted(adj[start])))]
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
                    work.append((child, iter(sorted(adj[child]))))
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
                        found.append(sorted(component))
    return sorted(found)


def _loop(adj: dict[str, dict[str, list[Edge]]], component: list[str]) -> list[str]:
    """A shortest loop from the component's first module back to it, within the component."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(adj[node]):
            if child == start:
                return paths[node] + [start]
            if child in members and child not in paths:
                paths[child] = paths[node] + [child]
                queue.append(child)
    raise AssertionError(f"no loop in component {component}")


def describe_cycles(graph: ImportGraph, cycles: list[list[str]]) -> str:
    adj = cycle_edges(graph)
    out = []
    for component in cycles:
        loop = _loop(adj, component)
        out.append(f"cycle among {len(component)} modules: {' → '.join(loop)}")
        on_loop = set(pairwise(loop))
        for a, b in pairwise(loop):
            for e in adj[a][b]:
                out.append(f"    {e}" + ("" if b == e.resolved else f"   (runs {b}/__init__ first)"))
        others = [(a, b) for a in component for b in sorted(adj[a]) if b in component and (a, b) not in on_loop]
        if others:
            out.append("  other edges within it:")
            for a, b in others:
                for e in adj[a][b]:
                    out.append(f"    {e}")
    return "\n".join(out)


def _report(rule: str, edges: list[Edge]) -> str:
    lines = "\n".join(f"  {e}" for e in edges)
    return f"{len(edges)} import(s) break the {rule!r} rule ({RULES[rule][0]}):\n{lines}"


# ---------------------------------------------------------------- the project's own tree


@pytest.fixture(scope="module")
def project() -> ImportGraph:
    graph = build_graph(ROOT)
    assert {"kmine.cli", "server.app", "worker.runner", "webui.app"} <= set(graph.modules)
    return graph


@pytest.mark.parametrize("rule", list(RULES))
def test_layers(project, rule):
    edges = rule_violations(project, rule)
    assert not edges, _report(rule, edges)


def test_no_import_cycles(project):
    cycles = find_cycles(project)
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + describe_cycles(project, cycles)


# ---------------------------------------------------------------- the checker itself, on small trees


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, source in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    for pkg in PACKAGES:  # every folder a package
        for folder in [root / pkg, *(p for p in (root / pkg).rglob("*") if p.is_dir())]:
            if folder.is_dir() and not (folder / "__init__.py").exists():
                (folder / "__init__.py").write_text("")
    return root


CLEAN = {
    "kmine/__init__.py": "",
    "kmine/data.py": "import numpy\nfrom pathlib import Path\n",
    "kmine/cli.py": "import typer\nfrom kmine import data\n",
    "server/core/db.py": "import sqlalchemy\nfrom kmine.data import Path\n",
    "server/services/jobs.py": "from server.core.db import sqlalchemy\nfrom ..core import db\n",
    "server/api/routes.py": "from server.services import jobs\nfrom server.core import db\n",
    "server/cli.py": "import worker.runner\nfrom webui import app\n",  # the composition root
    "worker/runner.py": "from server.core.db import sqlalchemy\nimport server.core\nfrom server import core\n",
    "webui/app.py": "import gradio, httpx, json\nimport numpy as np\nfrom PIL import Image\nfrom webui import client\n",
    "webui/client.py": "import httpx\n",
}

# A lazy package (kmine._lazy): the TYPE_CHECKING imports are what __getattr__ imports on first use.
LAZY_TEACHER = '''\
from typing import TYPE_CHECKING
from kmine._lazy import lazy_exports
if TYPE_CHECKING:
    from kmine.teacher.base import Teacher
    from .cache import Cache
else:
    __all__, __getattr__, __dir__ = lazy_exports(__name__, {"base": ("Teacher",), "cache": ("Cache",)})
'''

# (name, files changed from CLEAN, rule expected to fire or "cycle", the offending target)
BROKEN = [
    ("engine-imports-server", {"kmine/cli.py": "from server.app import create_app\n"}, "engine", "server.app"),
    ("engine-imports-worker-in-a-function", {"kmine/cli.py": "def f():\n    import worker.runner\n"}, "engine", "worker.runner"),
    ("engine-imports-webui-under-try", {"kmine/data.py": "try:\n    from webui import app\nexcept ImportError:\n    pass\n"},
     "engine", "webui.app"),
    ("engine-imports-server-in-type-checking-else",
     {"kmine/data.py": "import typing\nif typing.TYPE_CHECKING:\n    pass\nelse:\n    from server.app import x\n"},
     "engine", "server.app"),
    ("webui-imports-the-engine", {"webui/app.py": "from kmine.data import Path\n"}, "webui", "kmine.data"),
    ("webui-imports-server", {"webui/client.py": "import httpx\ndef f():\n    from server.core import db\n"}, "webui",
     "server.core.db"),
    ("webui-imports-torch", {"webui/app.py": "import torch\n"}, "webui", "torch"),
    ("worker-imports-services", {"worker/runner.py": "from server.services.jobs import db\n"}, "worker", "server.services.jobs"),
    ("worker-imports-server-api", {"worker/runner.py": "from server import api\n"}, "worker", "server.api"),
    ("worker-imports-server-package", {"worker/runner.py": "import server\n"}, "worker", "server"),
    ("core-imports-services", {"server/core/db.py": "from server.services import jobs\n"}, "server-core", "server.services.jobs"),
    ("core-imports-api-relatively", {"server/core/db.py": "def f():\n    from ..api import routes\n"}, "server-core",
     "server.api.routes"),
    ("server-imports-worker", {"server/api/routes.py": "from worker.runner import x\n"}, "server", "worker.runner"),
    ("server-imports-webui", {"server/services/jobs.py": "import webui.app\n"}, "server", "webui.app"),
    ("two-module-cycle-in-a-function", {"kmine/data.py": "def f():\n    from kmine import cli\n"}, "cycle",
     ["kmine.cli", "kmine.data"]),
    ("three-module-cycle", {"kmine/a.py": "import kmine.b\n", "kmine/b.py": "from kmine import c\n",
                            "kmine/c.py": "from . import a\n"}, "cycle", ["kmine.a", "kmine.b", "kmine.c"]),
    # A submodule importing its package's __init__ name re-exported from a sibling that imports it back.
    ("cycle-through-a-reexport", {"kmine/teacher/__init__.py": "from kmine.teacher.base import Teacher\n",
                                  "kmine/teacher/base.py": "from kmine.teacher.cache import Cache\nclass Teacher: ...\n",
                                  "kmine/teacher/cache.py": "def f():\n    from kmine.teacher import Teacher\n"},
     "cycle", ["kmine.teacher.base", "kmine.teacher.cache"]),
    # Importing a.b.c runs a/b/__init__ first: a cycle through another package's __init__.
    ("cycle-through-another-packages-init", {"kmine/io/__init__.py": "from kmine.io.other import x\n",
                                             "kmine/io/files.py": "load = 1\n",
                                             "kmine/io/other.py": "import kmine.cli\nx = 1\n",
                                             "kmine/cli.py": "from kmine.io.files import load\n"},
     "cycle", ["kmine.cli", "kmine.io", "kmine.io.other"]),
    # The same through a name that another package's __init__ re-exports from elsewhere.
    ("cycle-through-a-reexporting-init", {"kmine/io/__init__.py": "from kmine.io.other import x\nfrom kmine.data import Path\n",
                                          "kmine/io/other.py": "from kmine import cli\nx = 1\n",
                                          "kmine/cli.py": "from kmine.io import Path\n"},
     "cycle", ["kmine.cli", "kmine.io", "kmine.io.other"]),
    # The same as cycle-through-a-reexport with a lazy package: its __getattr__ runs the import.
    ("cycle-through-a-lazy-reexport", {"kmine/teacher/__init__.py": LAZY_TEACHER,
                                       "kmine/teacher/base.py": "from kmine.teacher.cache import Cache\nclass Teacher: ...\n",
                                       "kmine/teacher/cache.py": "from kmine.teacher import Teacher\nclass Cache: ...\n"},
     "cycle", ["kmine.teacher.base", "kmine.teacher.cache"]),
]

# Trees that must pass: legal forms the checker must not mistake for violations or cycles.
ALLOWED = [
    ("clean", {}),
    ("type-checking-import-is-skipped", {
        "kmine/data.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from server.app import App\n    from kmine import cli\n",
    }),
    ("typing-dot-type-checking-is-skipped", {
        "webui/app.py": "import typing\nif typing.TYPE_CHECKING:\n    from kmine.data import Path\nelse:\n    import json\n",
    }),
    # A package __init__ re-exporting its submodules, which import each other and names from
    # the package: resolved to the defining submodule, no cycle.
    ("package-reexports-its-submodules", {
        "kmine/teacher/__init__.py": "from kmine.teacher.base import Teacher\nfrom .cache import Cache\nVERSION = 1\n",
        "kmine/teacher/base.py": "from kmine.teacher.cache import Cache\nfrom kmine.teacher import VERSION\nclass Teacher: ...\n",
        "kmine/teacher/cache.py": "from kmine.teacher import VERSION\nimport kmine.teacher\nclass Cache: ...\n",
        "kmine/cli.py": "from kmine.teacher import Teacher, Cache\n",
    }),
    ("server-cli-composes-everything", {"server/cli.py": "def main():\n    from worker import runner\n    import webui.app\n"}),
    # The same as package-reexports-its-submodules, lazily.
    ("lazy-package-reexports-its-submodules", {
        "kmine/teacher/__init__.py": LAZY_TEACHER,
        "kmine/teacher/base.py": "from kmine.teacher import Cache\nclass Teacher: ...\n",
        "kmine/teacher/cache.py": "import kmine.teacher\nclass Cache: ...\n",
        "kmine/cli.py": "from kmine.teacher import Teacher, Cache\n",
    }),
]


@pytest.mark.parametrize("name, changes, expected, target", BROKEN, ids=[b[0] for b in BROKEN])
def test_checker_finds_what_is_broken(tmp_path, name, changes, expected, target):
    graph = build_graph(make_tree(tmp_path, {**CLEAN, **changes}))
    clean_rules = set(RULES)
    if expected == "cycle":
        cycles = find_cycles(graph)
        assert cycles, "no cycle found"
        assert cycles == [target], describe_cycles(graph, cycles)
        report = describe_cycles(graph, cycles)
        assert "cycle among" in report and ".py:" in report
    else:
        found = rule_violations(graph, expected)
        assert [e.target for e in found] == [target], found
        assert target in _report(expected, found)
        clean_rules.discard(expected)
    for rule in clean_rules:
        assert not rule_violations(graph, rule), (rule, rule_violations(graph, rule))


@pytest.mark.parametrize("name, changes", ALLOWED, ids=[a[0] for a in ALLOWED])
def test_checker_passes_what_is_allowed(tmp_path, name, changes):
    graph = build_graph(make_tree(tmp_path, {**CLEAN, **changes}))
    for rule in RULES:
        assert not rule_violations(graph, rule), _report(rule, rule_violations(graph, rule))
    cycles = find_cycles(graph)
    assert not cycles, describe_cycles(graph, cycles)


def test_reexports_resolve_to_the_defining_module(tmp_path):
    graph = build_graph(make_tree(tmp_path, {**CLEAN, **ALLOWED[3][1]}))
    edges = {(e.source, e.text): e for e in graph.edges}
    assert edges[("kmine.cli", "from kmine.teacher import Teacher, Cache")].resolved in {"kmine.teacher.base",
                                                                                          "kmine.teacher.cache"}
    resolved = sorted(e.resolved for e in graph.edges if e.source == "kmine.cli" and e.target == "kmine.teacher")
    assert resolved == ["kmine.teacher.base", "kmine.teacher.cache"]
    # a name the __init__ defines itself stays an edge to the package
    assert edges[("kmine.teacher.base", "from kmine.teacher import VERSION")].resolved == "kmine.teacher"
    # relative imports are made absolute
    assert edges[("kmine.teacher", "from .cache import Cache")].target == "kmine.teacher.cache"


def test_lazy_reexports_resolve_to_the_defining_module(tmp_path):
    graph = build_graph(make_tree(tmp_path, {**CLEAN, **ALLOWED[-1][1]}))
    resolved = sorted(e.resolved for e in graph.edges if e.source == "kmine.cli" and e.target == "kmine.teacher")
    assert resolved == ["kmine.teacher.base", "kmine.teacher.cache"]
    base = [e.resolved for e in graph.edges if e.source == "kmine.teacher.base"]
    assert base == ["kmine.teacher.cache"]
    # the lazy __init__ runs none of its TYPE_CHECKING imports: no edges to its submodules
    assert not [e for e in graph.edges if e.source == "kmine.teacher" and e.target.startswith("kmine.teacher.")]
