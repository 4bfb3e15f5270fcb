"""No import circle inside ``nas_core``: the engine's modules form layers.

Components once took the whole ``Run`` and ``components/base.py``, ``hookspecs.py``,
``run.py`` and ``plugins.py`` imported each other in a loop; since plugin API 1.1 a component
sees only the :class:`~nas_core.context.ComponentContext` and the loop is gone. This test reads
(without importing) every module of ``nas_core`` and fails on any circle of imports. It counts
every import: inside functions (a lazy import hides a circle, it does not remove it) and under
``if TYPE_CHECKING:`` (the old loop ran through type annotations, ``run: "Run"``).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import nas_core

PACKAGE = Path(nas_core.__file__).resolve().parent


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of the package."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports (``from pkg import submodule``
    counts as importing the submodule)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: None if is_package else -1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            submodules = {f"{module}.{alias.name}" for alias in node.names} & known
            found.update(submodules)
            if module in known and len(submodules) < len(node.names):
                found.add(module)
    found.discard(name)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    files = module_files(package)
    return {name: imported_modules(name, path, set(files)) for name, path in files.items()}


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (``[a, b, ..., a]``: a imports b ...), or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()  # the graph's edges read "needs"
    except graphlib.CycleError as exc:
        return list(reversed(exc.args[1]))  # graphlib lists each module before the one needing it
    return None


def test_nas_core_has_no_import_circle():
    graph = import_graph()
    assert len(graph) > 30 and "nas_core.run" in graph["nas_core.trainer"], "the module scan found too little"
    found = circle(graph)
    assert found is None, "import circle in nas_core: " + " -> ".join(found)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"a.py": "from pkg import b", "b.py": "def f():\n    from pkg.a import x"}, True),
        ({"a.py": "from pkg import b", "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x"}, True),
        ({"a.py": "from pkg import b", "b.py": "import pkg.c", "c.py": "y = 1"}, False),
        ({"__init__.py": "from pkg.a import x", "a.py": "from pkg import b", "b.py": "y = 1"}, False),
        ({"a.py": "from . import b", "b.py": "from .a import x"}, True),
    ],
)
def test_the_scan_sees_lazy_type_checking_and_relative_imports(tmp_path, files, expected):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (package / name).write_text(text)
    assert (circle(import_graph(package)) is not None) is expected
