"""Plugins, the example plugin and the OpenMMLab bridge use only the engine's public API.

Public: ``nas_core`` (top level), ``nas_core.api`` and ``nas_core.testing``. Every other
``nas_core`` module is private. This test reads (without importing) every Python file of
``plugins/*/``, ``examples/*/`` and ``downstream/`` -- package code, tests and conftests -- and
fails on any import of a private module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nas_core
import nas_core.api

REPO = Path(__file__).resolve().parents[1]
PUBLIC = {"nas_core", "nas_core.api", "nas_core.testing"}
CHECKED = [*sorted((REPO / "plugins").glob("*/")), *sorted((REPO / "examples").glob("*/")), REPO / "downstream"]


def python_files() -> list[Path]:
    return sorted(p for folder in CHECKED for p in folder.rglob("*.py") if "build" not in p.parts)


def is_submodule(name: str) -> bool:
    package = Path(nas_core.__file__).parent
    return (package / f"{name}.py").is_file() or (package / name / "__init__.py").is_file()


def private_imports(path: Path) -> list[str]:
    """``line: module`` for every import of a private ``nas_core`` module in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from nas_core import config" imports the module nas_core.config
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names if node.module == "nas_core" and is_submodule(a.name)]
        else:
            continue
        for module in modules:
            if (module == "nas_core" or module.startswith("nas_core.")) and module not in PUBLIC:
                found.append(f"{node.lineno}: {module}")
    return found


def test_plugins_examples_and_the_bridge_import_only_the_public_api():
    files = python_files()
    assert len(files) > 40, "the checked folders moved"
    offenders = {str(p.relative_to(REPO)): hits for p in files if (hits := private_imports(p))}
    assert not offenders, "private nas_core modules imported (use nas_core.api or nas_core.testing): " + "; ".join(
        f"{path} line {', line '.join(hits)}" for path, hits in offenders.items()
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import nas_core.trainer", ["1: nas_core.trainer"]),
        ("from nas_core.components.base import Sampler", ["1: nas_core.components.base"]),
        ("from nas_core import distributed", ["1: nas_core.distributed"]),
        ("from nas_core import hookimpl, api", []),
        ("from nas_core.api import Sampler\nimport nas_core.testing", []),
        ("from . import trainer", []),
    ],
)
def test_the_check_tells_public_from_private(tmp_path, source, expected):
    path = tmp_path / "module.py"
    path.write_text(source)
    assert private_imports(path) == expected


def test_the_public_api_lists_what_it_exports():
    assert nas_core.api.__all__ and len(set(nas_core.api.__all__)) == len(nas_core.api.__all__)
    for name in nas_core.api.__all__:
        assert hasattr(nas_core.api, name), name
