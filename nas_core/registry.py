"""Named registries for everything a config can pick: spaces, ops, data sets, components.

A registry explains itself: registering a name twice is an error naming where the first one
came from, and looking up an unknown name lists what exists with the closest match.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Generic, Iterator, TypeVar

from pydantic import BaseModel

from nas_core.errors import NasError

T = TypeVar("T")


class RegistryError(NasError):
    """A duplicate or unknown registry name."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object with the options model that configures it and who registered it."""

    name: str
    obj: T
    options: type[BaseModel] | None
    source: str
    doc: str


@dataclass
class Registry(Generic[T]):
    """A mapping from names to buildable objects of one kind (``kind`` is used in messages).

    ``options`` is a pydantic model (inherit :class:`nas_core.config.Section`) that validates
    the keys a config gives next to ``name``; the registered object is called with the
    validated options as keyword arguments (plus whatever context the caller passes).
    """

    kind: str
    _entries: dict[str, Entry[T]] = field(default_factory=dict)
    current_source: str = "<unknown>"

    def register(
        self, name: str, obj: T, *, options: type[BaseModel] | None = None, source: str | None = None
    ) -> T:
        """Register ``obj`` under ``name``; a second registration of the same name is an error."""
        source = source or self.current_source
        if name in self._entries:
            first = self._entries[name].source
            raise RegistryError(f"{self.kind} '{name}' registered twice: first by {first}, again by {source}")
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        self._entries[name] = Entry(name, obj, options, source, doc[0] if doc else "")
        return obj

    def decorator(self, name: str, *, options: type[BaseModel] | None = None) -> Callable[[T], T]:
        """``@registry.decorator("name")`` form of :meth:`register`."""
        return lambda obj: self.register(name, obj, options=options)

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``; unknown names raise with the closest match and the full list."""
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self._unknown_message(name)) from None

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def build(self, name: str, options: BaseModel | dict[str, Any] | None = None, **context: Any) -> Any:
        """Call the registered factory with validated options and the caller's context."""
        entry = self.entry(name)
        values = options.model_dump() if isinstance(options, BaseModel) else dict(options or {})
        return entry.obj(**context, **values)

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style wildcard pattern (``fair*``, ``*nas*``)."""
        return sorted(name for name in self._entries if fnmatch.fnmatchcase(name, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def _unknown_message(self, name: str) -> str:
        names = sorted(self._entries)
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

    def set_source(self, source: str) -> None:
        """Name the plugin whose registration hooks are about to run (for duplicate messages)."""
        for registry in self.all().values():
            registry.current_source = source
