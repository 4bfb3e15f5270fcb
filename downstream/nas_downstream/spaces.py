"""Search spaces by name, built through the engine's registries (every installed plugin's space)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Mapping

from nas_core.errors import NasError
from nas_core.plugins import PluginHost
from nas_core.spaces.space import SearchSpace


@lru_cache(maxsize=1)
def plugin_host() -> PluginHost:
    return PluginHost()


def space_names() -> list[str]:
    return plugin_host().registries.search_spaces.list()


def validated_options(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The space's options validated (and completed with defaults) by its registered model."""
    entry = plugin_host().registries.search_spaces.entry(name)
    if entry.options is None:
        return dict(options or {})
    try:
        return entry.options.model_validate(dict(options or {})).model_dump(mode="json")
    except Exception as exc:  # pydantic ValidationError
        first = str(exc).strip().splitlines()
        raise NasError(f"space '{name}' options {dict(options or {})}: {' '.join(first[:3])}") from None


@lru_cache(maxsize=32)
def _build(name: str, options_json: str) -> SearchSpace:
    registries = plugin_host().registries
    ops = {entry.name: entry.obj for entry in registries.ops}
    return registries.search_spaces.build(name, json.loads(options_json), ops=ops)


def build_space(name: str, options: Mapping[str, Any] | None = None) -> SearchSpace:
    """The registered space ``name`` with validated options (cached per name and options)."""
    return _build(name, json.dumps(validated_options(name, options), sort_keys=True))
