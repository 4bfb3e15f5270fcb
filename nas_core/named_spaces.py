"""Search spaces by name, from every installed plugin, outside a run.

For code that holds only a space's name and options -- an exported subnet, a supernet
checkpoint, the OpenMMLab bridge's backbone config -- and not a run config: the installed
plugins are loaded once (autoload, as ``nas plugins`` sees them), the options are validated
by the model the space registered, and built spaces are cached per name and options.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Mapping

from pydantic import ValidationError

from nas_core.config import validation_messages
from nas_core.errors import ConfigError
from nas_core.plugins import PluginHost
from nas_core.spaces.space import SearchSpace


@lru_cache(maxsize=1)
def plugin_host() -> PluginHost:
    """The installed plugins, loaded once per process."""
    return PluginHost()


def space_names() -> list[str]:
    """Every registered search space."""
    return plugin_host().registries.search_spaces.list()


def validated_space_options(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The space's options validated (and completed with defaults) by its registered model."""
    entry = plugin_host().registries.search_spaces.entry(name)
    if entry.options is None:
        return dict(options or {})
    try:
        return entry.options.model_validate(dict(options or {})).model_dump(mode="json")
    except ValidationError as exc:
        raise ConfigError(*validation_messages(f"space '{name}'", exc)) from None


@lru_cache(maxsize=32)
def _build(name: str, options_json: str) -> SearchSpace:
    registries = plugin_host().registries
    return registries.search_spaces.build(name, json.loads(options_json), ops=registries.ops.objects())


def build_space(name: str, options: Mapping[str, Any] | None = None) -> SearchSpace:
    """The registered space ``name`` with validated options (cached per name and options)."""
    return _build(name, json.dumps(validated_space_options(name, options), sort_keys=True))
