"""Meta-tests of the code's shape: no import cycles, small modules, layers that point one way.

The four installed packages (``kgmm``, ``graph_store``, ``kg_builder``, ``cli``) are read
with :mod:`ast`, never imported, so a cycle is found even where Python would tolerate it.

What counts as an import: **every** ``import`` / ``from ... import`` statement in a file,
wherever it stands: at module level, inside a function (a "lazy" import), under
``if TYPE_CHECKING:`` or in a ``try``. A lazy import is still a dependency; it only hides
a cycle from the interpreter, which is exactly what these tests must not do. Both graphs
below are built from that one list of statements.

- **Module graph**: one node per module (a package's ``__init__.py`` is the package's
  module). ``from a.b import c`` points at the module ``a.b.c`` when there is one, else at
  ``a.b``; relative imports are resolved against the importing file's package.
- **Package graph**: one node per package (a directory with ``__init__.py``); a module
  belongs to the package of its directory, so ``kgmm/config.py`` belongs to ``kgmm`` and
  ``kgmm/model/k3m.py`` to ``kgmm.model``. An edge joins two different packages when a
  module of one imports a module of the other, except that a package's ``__init__.py``
  may import its own subpackages to re-export them: that is containment, not a
  dependency (otherwise ``kg_builder/__init__.py`` re-exporting ``kg_builder.readers``,
  whose modules use ``kg_builder/records.py``, would read as a cycle). A real cycle through
  an ``__init__.py`` is still caught by the module graph, which has no such exception.

A failure lists each strongly connected component with one cycle through it and the
file:line of every import on that cycle. There is no allow-list: a cycle is fixed in the
code, not here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kgmm", "graph_store", "kg_builder", "cli")
MAX_LINES = 500

TORCH_STACK = ("torch", "torchvision", "torch_geometric", "timm", "transformers")
"""torch, and libraries that import torch when they are imported."""

FORBIDDEN = {
    "kg_builder": ("kgmm", "cli", *TORCH_STACK),
    "graph_store": ("kgmm", "kg_builder", "cli"),
    "kgmm": ("cli",),
}
"""Layer direction (``cli -> {kgmm, kg_builder} -> graph_store``): what each package never imports."""


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    target: str  # module name (our own), or the dotted name as written (third party)
    where: str  # "path:line"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str, modules: dict[str, Path]) -> str:
    """The package a module belongs to: itself for an ``__init__.py``, else its parent."""
    return module if modules[module].name == "__init__.py" else module.rpartition(".")[0]


def find_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file inside a package (a folder with ``__init__.py``)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if all((folder / "__init__.py").is_file() for folder in _folders(path.parent, root)):
                found[module_name(path, root)] = path
    return found


def _folders(folder: Path, root: Path) -> list[Path]:
    out = []
    while folder != root:
        out.append(folder)
        folder = folder.parent
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The longest prefix of ``name`` that is one of our modules, else ``name`` itself."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return name


def find_imports(modules: dict[str, Path], root: Path) -> list[Import]:
    """Every import statement of every module (see the module docstring), resolved."""
    found: list[Import] = []
    for module, path in modules.items():
        package = package_of(module, modules)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(module, _resolve(alias.name, modules), where))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    assert base, f"{where}: relative import above the top-level package"
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    target = submodule if submodule in modules else _resolve(source, modules)
                    found.append(Import(module, target, where))
    return found


def module_graph(imports: list[Import], modules: dict[str, Path]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for imp in imports:
        if imp.target in modules and imp.target != imp.importer:
            graph.add_edge(imp.importer, imp.target)
            graph.edges[imp.importer, imp.target].setdefault("where", []).append(imp.where)
    return graph


def package_graph(imports: list[Import], modules: dict[str, Path]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from({package_of(m, modules) for m in modules})
    for imp in imports:
        if imp.target not in modules:
            continue
        a, b = package_of(imp.importer, modules), package_of(imp.target, modules)
        exposes_own_part = imp.importer == a and b.startswith(a + ".")  # an __init__.py re-exporting
        if a != b and not exposes_own_part:
            graph.add_edge(a, b)
            graph.edges[a, b].setdefault("where", []).append(f"{imp.where} ({imp.importer} -> {imp.target})")
    return graph


def describe_cycles(graph: nx.DiGraph) -> list[str]:
    """One entry per strongly connected component of two or more nodes: its members and
    one cycle through it, with where each import on the cycle is."""
    found = []
    for component in sorted((sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)):
        cycle = nx.find_cycle(graph.subgraph(component), source=component[0])
        steps = "\n".join(f"    {a} -> {b}  [{', '.join(list(dict.fromkeys(graph.edges[a, b]['where']))[:3])}]" for a, b in cycle)
        found.append(f"cycle among {{{', '.join(component)}}}:\n{steps}")
    return found


@pytest.fixture(scope="module")
def code() -> tuple[dict[str, Path], list[Import]]:
    modules = find_modules(ROOT)
    return modules, find_imports(modules, ROOT)


def test_the_scan_sees_the_code(code) -> None:
    """Guard against a vacuous pass: every package is found and its imports resolve."""
    modules, imports = code
    assert set(PACKAGES) <= set(modules)
    internal = [imp for imp in imports if imp.target in modules]
    assert len(internal) > 100, f"only {len(internal)} imports between our modules: is the scan broken?"
    assert any(imp.target == "graph_store" and imp.importer.startswith("kgmm.") for imp in imports)


def test_no_import_cycle_between_modules(code) -> None:
    modules, imports = code
    cycles = describe_cycles(module_graph(imports, modules))
    assert not cycles, f"{len(cycles)} import cycle(s) between modules:\n" + "\n".join(cycles)


def test_no_import_cycle_between_packages(code) -> None:
    modules, imports = code
    cycles = describe_cycles(package_graph(imports, modules))
    assert not cycles, f"{len(cycles)} import cycle(s) between packages:\n" + "\n".join(cycles)


def test_no_module_over_500_lines(code) -> None:
    modules, _ = code
    sizes = {path.relative_to(ROOT): len(path.read_text(encoding="utf-8").splitlines()) for path in modules.values()}
    over = sorted(f"{path}: {n} lines" for path, n in sizes.items() if n > MAX_LINES)
    assert not over, f"modules over {MAX_LINES} lines (split them):\n" + "\n".join(over)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_point_one_way(code, package: str) -> None:
    modules, imports = code
    bad = sorted(
        f"{imp.where}: {imp.importer} imports {imp.target}"
        for imp in imports
        if imp.importer.split(".")[0] == package and imp.target.split(".")[0] in FORBIDDEN[package]
    )
    assert not bad, f"{package} must never import {', '.join(FORBIDDEN[package])}:\n" + "\n".join(bad)


# -- the checker checks itself on a small tree with known answers ----------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_the_checker_finds_lazy_relative_and_package_cycles(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "app/__init__.py": "",
        "app/base.py": "from .top import helper\n",  # relative, level 1
        "app/top.py": "def helper():\n    from app.sub import deep  # lazy\n",
        "app/sub/__init__.py": "",
        "app/sub/deep.py": "from .. import base\nimport os\n",  # relative, level 2; stdlib ignored
        "app/sub/leaf.py": "from ..base import x\n",
        "app/notpkg/stray.py": "import app.top\n",  # no __init__.py: not a module
    })
    modules = find_modules(root, ("app",))
    assert set(modules) == {"app", "app.base", "app.top", "app.sub", "app.sub.deep", "app.sub.leaf"}
    imports = find_imports(modules, root)
    assert {(i.importer, i.target) for i in imports} == {
        ("app.base", "app.top"), ("app.top", "app.sub.deep"), ("app.sub.deep", "app.base"),
        ("app.sub.deep", "os"), ("app.sub.leaf", "app.base"),
    }
    (module_cycle,) = describe_cycles(module_graph(imports, modules))
    assert "{app.base, app.sub.deep, app.top}" in module_cycle and "app/top.py:2" in module_cycle
    (package_cycle,) = describe_cycles(package_graph(imports, modules))
    assert "{app, app.sub}" in package_cycle


def test_the_checker_passes_a_clean_tree(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "app/__init__.py": "from .a import f\nfrom .sub import g\n",  # a face re-exporting its parts
        "app/a.py": "from . import b\n",
        "app/b.py": "import json\n",
        "app/sub/__init__.py": "from .c import g\n",
        "app/sub/c.py": "from ..b import json\n",  # a subpackage using a module of its parent
    })
    modules = find_modules(root, ("app",))
    imports = find_imports(modules, root)
    assert describe_cycles(module_graph(imports, modules)) == []
    assert describe_cycles(package_graph(imports, modules)) == []


def test_a_cycle_through_an_init_is_a_module_cycle(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "app/__init__.py": "from .sub import g\n",
        "app/sub/__init__.py": "from .c import g\n",
        "app/sub/c.py": "from .. import VERSION\n",  # needs the face that imports it
    })
    modules = find_modules(root, ("app",))
    imports = find_imports(modules, root)
    (cycle,) = describe_cycles(module_graph(imports, modules))
    assert "{app, app.sub, app.sub.c}" in cycle
