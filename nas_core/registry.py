"""Named registries for everything a config can pick: spaces, ops, data sets, components.

A registry explains itself: looking up an unknown name lists what exists with the closest
match; a name two plugins both registered is ambiguous only where it is used, and the message
names both plugins and the qualified names (``plugin:name``) that pick one of them.

Every entry belongs to the plugin that registered it, so a plugin whose registration fails can
be taken out again completely (:meth:`Registry.remove_plugin`).
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Generic, Iterator, TypeVar

from pydantic import BaseModel

from nas_core.errors import NasError

T = TypeVar("T")

QUALIFIER = ":"
"""Separates a plugin's name from a component's name in a qualified name: ``cream:cream``."""


class RegistryError(NasError):
    """A duplicate, ambiguous or unknown registry name."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object with the options model that configures it and who registered it."""

    name: str
    obj: T
    options: type[BaseModel] | None
    source: str
    doc: str
    plugin: str = ""
    """The name of the plugin that registered it (the left part of its qualified name)."""
    api: tuple[int, int] | None = None
    """The plugin API version the registering plugin declared (None: not declared)."""

    @property
    def qualified(self) -> str:
        return f"{self.plugin}{QUALIFIER}{self.name}" if self.plugin else self.name


@dataclass
class Registry(Generic[T]):
    """A mapping from names to buildable objects of one kind (``kind`` is used in messages).

    ``options`` is a pydantic model (inherit :class:`nas_core.config.Section`) that validates
    the keys a config gives next to ``name``. Components are built by
    :func:`nas_core.context.build_component` as ``factory(context, options)``;
    spaces, ops and data sets by :meth:`build` as ``factory(**context, **options)``.
    """

    kind: str
    _entries: dict[str, list[Entry[T]]] = field(default_factory=dict)
    current_source: str = "<unknown>"
    current_plugin: str = ""
    current_api: tuple[int, int] | None = None

    def register(
        self, name: str, obj: T, *, options: type[BaseModel] | None = None, source: str | None = None
    ) -> T:
        """Register ``obj`` under ``name`` for the plugin whose registration hooks are running.

        The same plugin registering a name twice is an error; two plugins registering the same
        name is allowed (each is reachable as ``plugin:name``; the bare name is then ambiguous).
        """
        if not name or QUALIFIER in name:
            raise RegistryError(f"{self.kind} name {name!r} is not allowed (non-empty, without '{QUALIFIER}')")
        source = source or self.current_source
        same = self._entries.setdefault(name, [])
        for entry in same:
            if entry.plugin == self.current_plugin:
                raise RegistryError(f"{self.kind} '{name}' registered twice: first by {entry.source}, again by {source}")
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        same.append(Entry(name, obj, options, source, doc[0] if doc else "", self.current_plugin, self.current_api))
        return obj

    def decorator(self, name: str, *, options: type[BaseModel] | None = None) -> Callable[[T], T]:
        """``@registry.decorator("name")`` form of :meth:`register`."""
        return lambda obj: self.register(name, obj, options=options)

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name`` or ``plugin:name``; unknown and ambiguous names raise a
        :class:`RegistryError` that says what exists."""
        plugin, sep, bare = name.rpartition(QUALIFIER)
        candidates = self._entries.get(bare if sep else name, [])
        if sep:
            candidates = [e for e in candidates if e.plugin == plugin]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise RegistryError(self._unknown_message(name))
        choices = " or ".join(f"'{e.qualified}'" for e in candidates)
        origins = " and ".join(e.source for e in candidates)
        raise RegistryError(f"{self.kind} '{name}' is ambiguous: registered by {origins}; write {choices}")

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def build(self, name: str, options: BaseModel | dict[str, Any] | None = None, **context: Any) -> Any:
        """Call a keyword factory (space, op, data set) with validated options and the caller's context."""
        entry = self.entry(name)
        values = options.model_dump() if isinstance(options, BaseModel) else dict(options or {})
        return entry.obj(**context, **values)

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style wildcard (``fair*``); a name registered by more
        than one plugin is listed once per plugin, qualified (``builtin:uniform``)."""
        return sorted(name for name in self.names() if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name.rpartition(QUALIFIER)[2], pattern))

    def names(self) -> list[str]:
        """Every name a config can use without ambiguity."""
        out = []
        for name, entries in self._entries.items():
            out += [name] if len(entries) == 1 else [e.qualified for e in entries]
        return out

    def objects(self) -> dict[str, T]:
        """``{name: object}`` for every unambiguous name and every qualified name."""
        out: dict[str, T] = {}
        for name, entries in self._entries.items():
            if len(entries) == 1:
                out[name] = entries[0].obj
            for e in entries:
                out[e.qualified] = e.obj
        return out

    def clashes(self) -> dict[str, list[Entry[T]]]:
        """Names registered by more than one plugin, with their entries."""
        return {name: list(entries) for name, entries in self._entries.items() if len(entries) > 1}

    def of_plugin(self, plugin: str) -> list[str]:
        """The names one plugin registered here."""
        return sorted(e.name for entries in self._entries.values() for e in entries if e.plugin == plugin)

    def remove_plugin(self, plugin: str) -> None:
        """Forget everything ``plugin`` registered here (its registration failed)."""
        for name in list(self._entries):
            self._entries[name] = [e for e in self._entries[name] if e.plugin != plugin]
            if not self._entries[name]:
                del self._entries[name]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.entry(name)
        except RegistryError:
            return False
        return True

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted((e for entries in self._entries.values() for e in entries), key=lambda e: (e.name, e.plugin)))

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._entries.values())

    def _unknown_message(self, name: str) -> str:
        names = sorted(self.names())
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        available = ", ".join(names) if names else "none registered"
        return f"unknown {self.kind} '{name}'{hint} (available: {available})"


@dataclass
class Registries:
    """All registries of one engine instance, one per kind of registered object."""

    search_spaces: Registry = field(default_factory=lambda: Registry("search space"))
    ops: Registry = field(default_factory=lambda: Registry("op"))
    datasets: Registry = field(default_factory=lambda: Registry("dataset"))
    samplers: Registry = field(default_factory=lambda: Registry("sampler"))
    regularizers: Registry = field(default_factory=lambda: Registry("regularizer"))
    teachers: Registry = field(default_factory=lambda: Registry("teacher"))
    evaluators: Registry = field(default_factory=lambda: Registry("evaluator"))
    searchers: Registry = field(default_factory=lambda: Registry("searcher"))
    config_sections: Registry = field(default_factory=lambda: Registry("config section"))

    def all(self) -> dict[str, Registry]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def set_source(self, source: str, plugin: str = "", api: tuple[int, int] | None = None) -> None:
        """Name the plugin whose registration hooks are about to run (entries belong to it)."""
        for registry in self.all().values():
            registry.current_source = source
            registry.current_plugin = plugin
            registry.current_api = api

    def remove_plugin(self, plugin: str) -> None:
        for registry in self.all().values():
            registry.remove_plugin(plugin)
