"""A plugin that records every lifecycle hook call, in order, with its arguments.

The recorder implements every broadcast hook of :mod:`nas_core.hookspecs` (generated from the
specs, so a new hook is recorded without touching this file) and returns None from each, so it
never changes a run. Register it with the kit's helpers (they do by default) or
``pm.register(HookRecorder())``.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any

from nas_core import PROJECT_NAME, hookimpl, hookspecs
from nas_core.plugins import REGISTRATION_HOOKS

_SPEC_MARK = PROJECT_NAME + "_spec"


def lifecycle_hook_names() -> list[str]:
    """Every hook in :mod:`nas_core.hookspecs` that is not a registration hook, in file order."""
    names = []
    for name, obj in vars(hookspecs).items():
        if name.startswith("nas_") and hasattr(obj, _SPEC_MARK) and name not in REGISTRATION_HOOKS:
            names.append(name)
    return names


@dataclass
class Call:
    """One hook call: the hook's name and the keyword arguments it received."""

    name: str
    kwargs: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.kwargs[key]


class HookRecorder:
    """Records ``Call(name, kwargs)`` for every lifecycle hook; ``names()`` gives the order.

    Mutable mappings passed to hooks (``metrics``) are copied when recorded, so later changes by
    the engine do not rewrite history; everything else is kept by reference.
    """

    NAS_PLUGIN_API = "1"

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def _record(self, name: str, kwargs: dict[str, Any]) -> None:
        kept = {k: (copy.copy(v) if k == "metrics" and isinstance(v, dict) else v) for k, v in kwargs.items()}
        self.calls.append(Call(name, kept))

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def of(self, name: str) -> list[Call]:
        """The calls of one hook, in order."""
        return [c for c in self.calls if c.name == name]

    def count(self, name: str) -> int:
        return len(self.of(name))

    def clear(self) -> None:
        self.calls.clear()

    def __len__(self) -> int:
        return len(self.calls)

    def __repr__(self) -> str:
        return f"HookRecorder({len(self.calls)} calls)"


def current_arguments(name: str) -> list[str]:
    """A hook's arguments minus the deprecated ones (what a plugin written today asks for)."""
    spec = getattr(hookspecs, name)
    deprecated = getattr(spec, _SPEC_MARK).get("warn_on_impl_args") or {}
    return [p for p in inspect.signature(spec).parameters if p not in deprecated]


def _add_recording_methods() -> None:
    """One ``@hookimpl`` method per lifecycle hook, with the spec's current argument names
    (pluggy passes arguments by name; deprecated ones are left out so recording never warns)."""
    for name in lifecycle_hook_names():
        args = current_arguments(name)
        source = f"def {name}(self, {', '.join(args)}):\n    self._record({name!r}, {{{', '.join(f'{a!r}: {a}' for a in args)}}})\n"
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<nas_core.testing recorder: {name}>", "exec"), namespace)  # noqa: S102 - generated from the specs
        method = namespace[name]
        method.__doc__ = f"Record a call of ``{name}``."
        setattr(HookRecorder, name, hookimpl(method))


_add_recording_methods()

__all__ = ["Call", "HookRecorder", "lifecycle_hook_names"]
