"""Tables for ``nas plugins`` and ``nas list``."""

from __future__ import annotations

import inspect
import re
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nas_core.errors import NasError
from nas_core.plugins import PluginHost
from nas_core.registry import Entry
from nas_core.slots import SLOTS

console = Console()


def show_plugins(with_hooks: bool) -> None:
    host = PluginHost()
    table = Table(title="plugins")
    for column in ("plugin", "version", "distribution", "registers") + (("hooks",) if with_hooks else ()):
        table.add_column(column)
    for name, info in host.plugins.items():
        registers = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.registered.items())
        if info.error:
            registers = f"[red]failed: {info.error}[/red]"
        row = [name, info.version, info.distribution, registers]
        if with_hooks:
            row.append(", ".join(host.hooks_of(name)))
        table.add_row(*row)
    console.print(table)


def kind_aliases() -> dict[str, str]:
    """Every word ``nas list`` accepts for a kind -> the registry attribute."""
    aliases = {"spaces": "search_spaces", "space": "search_spaces", "search-spaces": "search_spaces", "sections": "config_sections",
               "section": "config_sections", "op": "ops", "dataset": "datasets", "data": "datasets"}
    aliases.update({s.kind: s.registry for s in SLOTS})
    aliases.update({s.name: s.registry for s in SLOTS})
    return aliases


def show_registry(kind: str, pattern: str) -> None:
    """``nas list [KIND] [PATTERN]``: a table of matching names; a single exact name shows that
    entry's description and options (type, default, description)."""
    host = PluginHost()
    registries = host.registries.all()
    kind = kind_aliases().get(kind, kind)
    if kind != "all" and kind not in registries:
        raise NasError(f"unknown kind '{kind}' (known: all, {', '.join(registries)})")
    chosen = {name: r for name, r in registries.items() if kind in ("all", name)}
    if not any(ch in pattern for ch in "*?["):
        exact = [(name, r) for name, r in chosen.items() if pattern in r]
        if len(exact) == 1:
            name, registry = exact[0]
            show_entry(name, registry.entry(pattern), registry.kind)
            return
    table = Table(title=f"registered {kind} matching '{pattern}'")
    for column in ("kind", "name", "from", "description"):
        table.add_column(column)
    for name, registry in chosen.items():
        for listed in registry.list(pattern):
            entry = registry.entry(listed)
            table.add_row(name, listed, escape(entry.source), escape(entry.doc))
    console.print(table)


def show_entry(kind: str, entry: Entry, label: str) -> None:
    """One registered entry of registry ``kind`` (``label``: its singular, ``teacher``): where it
    comes from, what it does, and every option."""
    doc = inspect.cleandoc(getattr(entry.obj, "__doc__", None) or "") or "(no description)"
    console.print(f"[bold]{label}[/bold] [bold cyan]{entry.name}[/bold cyan] (qualified: {entry.qualified}) from {escape(entry.source)}")
    console.print(doc, markup=False, highlight=False)
    model = entry.options if entry.options is not None else (entry.obj if kind == "config_sections" else None)
    if model is None:
        console.print("options: none registered (keyword arguments of the factory)" if kind in ("ops",) else "options: none")
        return
    table = Table(title=f"options of {label} '{entry.name}'")
    for column in ("option", "type", "default", "description"):
        table.add_column(column)
    for name, field in model.model_fields.items():
        table.add_row(name, escape(type_name(field.annotation)), escape(default_text(field)), escape(field.description or ""))
    if not model.model_fields:
        table.add_row("(none)", "", "", "")
    console.print(table)


def type_name(annotation: Any) -> str:
    """A readable type: ``int | None``, ``Literal['fold', 'drop']``, ``list[str]``."""
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    text = repr(annotation)
    text = re.sub(r"<class '([\w.]+)'>", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return re.sub(r"\b(typing|pydantic\w*|nas_\w+)\.(\w+\.)*", "", text)


def default_text(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return repr(value) if isinstance(value, str) else str(value)

