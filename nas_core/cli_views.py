"""Tables for ``nas plugins`` and ``nas list``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from nas_core.errors import NasError
from nas_core.plugins import PluginHost

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


def show_registry(kind: str, pattern: str) -> None:
    host = PluginHost()
    registries = host.registries.all()
    aliases = {"spaces": "search_spaces", "space": "search_spaces", "sections": "config_sections"}
    kind = aliases.get(kind, kind)
    if kind != "all" and kind not in registries:
        raise NasError(f"unknown kind '{kind}' (known: all, {', '.join(registries)})")
    table = Table(title=f"registered {kind} matching '{pattern}'")
    for column in ("kind", "name", "from", "description"):
        table.add_column(column)
    for name, registry in registries.items():
        if kind not in ("all", name):
            continue
        for entry_name in registry.list(pattern):
            entry = registry.entry(entry_name)
            table.add_row(name, entry.name, entry.source, entry.doc)
    console.print(table)
