"""Plugin discovery and the plugin manager.

Plugins are found through the ``nas_core.plugins`` entry-point group and loaded one at a time:
a plugin that fails to import is reported by name and skipped, unless the config needs it
(``plugins.enable``), in which case the run stops with that error. Misspelled hook
implementations fail loudly (``pm.check_pending``). The built-in components are a plugin too
and register through the same hooks.

Environment:
- ``NAS_DISABLE_PLUGIN_AUTOLOAD=1``: load only the plugins the config enables.
- ``NAS_PLUGINS=a,b``: autoload only these installed plugins (an allowlist).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from nas_core import ENTRY_POINT_GROUP, PLUGIN_API_VERSION, PROJECT_NAME, __version__, hookspecs
from nas_core.errors import NasError, PluginError
from nas_core.registry import Registries

REGISTRATION_HOOKS = {
    "nas_register_search_spaces": "search_spaces",
    "nas_register_ops": "ops",
    "nas_register_datasets": "datasets",
    "nas_register_samplers": "samplers",
    "nas_register_regularizers": "regularizers",
    "nas_register_teachers": "teachers",
    "nas_register_evaluators": "evaluators",
    "nas_register_searchers": "searchers",
    "nas_register_config_sections": "config_sections",
}


@dataclass
class PluginInfo:
    """What is known of one plugin: where it came from and whether it loaded."""

    name: str
    version: str
    distribution: str
    module: ModuleType | None = None
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def loaded(self) -> bool:
        return self.module is not None and self.error is None


def _api_tuple(version: str) -> tuple[int, int] | None:
    parts = str(version).strip().split(".")
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]) if len(parts) == 2 else 0


def check_api(name: str, module: ModuleType) -> None:
    """A plugin may declare ``NAS_PLUGIN_API = "1"`` (or ``"1.2"``): the major must equal the
    engine's and the minor must not be newer; otherwise it is rejected, naming both versions."""
    wanted = getattr(module, "NAS_PLUGIN_API", None)
    if wanted is None:
        return
    need, have = _api_tuple(wanted), _api_tuple(PLUGIN_API_VERSION)
    if need is None:
        raise PluginError(f"plugin '{name}' declares NAS_PLUGIN_API = {wanted!r}, which is not a version like \"1\" or \"1.0\"")
    if have is not None and (need[0] != have[0] or need[1] > have[1]):
        raise PluginError(
            f"plugin '{name}' needs plugin API {wanted}, but nas-core {__version__} provides plugin API {PLUGIN_API_VERSION}"
        )


class PluginHost:
    """Owns the pluggy manager, the loaded plugins and the registries they filled."""

    def __init__(self, enable: list[str] | tuple[str, ...] = (), disable: list[str] | tuple[str, ...] = (), autoload: bool | None = None):
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.registries = Registries()
        self._enable = list(enable)
        self._disable = set(disable)
        if autoload is None:
            autoload = os.environ.get("NAS_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
        self._autoload = autoload
        allow = os.environ.get("NAS_PLUGINS")
        self._allow = {p.strip() for p in allow.split(",") if p.strip()} if allow is not None else None

        from nas_core import builtin

        self._register("builtin", builtin, PluginInfo("builtin", __version__, "nas-core"))
        self._discover()
        self._fill_registries()

    # ---------------------------------------------------------------- discovery

    def _discover(self) -> None:
        eps = {ep.name: ep for ep in md.entry_points(group=ENTRY_POINT_GROUP)}
        for name in self._enable:
            if name in self._disable:
                raise PluginError(f"plugin '{name}' is both enabled and disabled in the config")
            if name not in eps and name != "builtin":
                installed = ", ".join(sorted(eps)) or "none"
                raise PluginError(f"plugin '{name}' is enabled in the config but not installed (installed plugins: {installed})")
        for name, ep in sorted(eps.items()):
            required = name in self._enable
            if not required and (
                name in self._disable or not self._autoload or (self._allow is not None and name not in self._allow)
            ):
                continue
            dist = ep.dist
            info = PluginInfo(name, dist.version if dist else "?", dist.metadata["Name"] if dist else "?")
            try:
                module = ep.load()
                check_api(name, module)
                self._register(name, module, info)
            except PluginError as exc:
                info.error = str(exc)
                self.plugins[name] = info
                if required:
                    raise
            except Exception as exc:  # a broken plugin must not stop the others
                info.error = f"{type(exc).__name__}: {exc}"
                self.plugins[name] = info
                if required:
                    raise PluginError(f"plugin '{name}' failed to load: {info.error}") from None
                warnings.warn(f"plugin '{name}' failed to load and is skipped: {info.error}", stacklevel=2)

    def _register(self, name: str, module: ModuleType, info: PluginInfo) -> None:
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(module)
            raise PluginError(f"plugin '{name}' is invalid: {exc}") from None
        info.module = module
        self.plugins[name] = info

    def _fill_registries(self) -> None:
        """Call each plugin's registration hooks one plugin at a time, so entries know their source."""
        for name, info in self.plugins.items():
            if not info.loaded:
                continue
            self.registries.set_source(f"plugin '{name}' ({info.distribution} {info.version})")
            for hook_name, attr in REGISTRATION_HOOKS.items():
                registry = getattr(self.registries, attr)
                before = set(registry.list())
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                    if impl.plugin is info.module:
                        try:
                            impl.function(registry=registry)
                        except NasError:  # duplicates and the like are errors of the installation
                            raise
                        except Exception as exc:
                            if name in self._enable or name == "builtin":
                                raise PluginError(f"plugin '{name}': {hook_name} failed: {type(exc).__name__}: {exc}") from None
                            info.error = f"registration failed: {type(exc).__name__}: {exc}"
                            warnings.warn(f"plugin '{name}' failed to register and is skipped: {info.error}", stacklevel=2)
                added = sorted(set(registry.list()) - before)
                if added:
                    info.registered[attr] = added

    # ---------------------------------------------------------------- queries

    def metadata(self) -> list[dict[str, Any]]:
        """Loaded plugins and versions, for every run's metadata."""
        return [
            {"name": p.name, "version": p.version, "distribution": p.distribution, "loaded": p.loaded, "error": p.error}
            for p in self.plugins.values()
        ]

    def hooks_of(self, name: str) -> list[str]:
        info = self.plugins.get(name)
        if info is None or info.module is None:
            return []
        return sorted(hc.name for hc in (self.pm.get_hookcallers(info.module) or []))

    @property
    def hook(self) -> Any:
        return self.pm.hook


def installed_plugin_names() -> list[str]:
    return sorted(ep.name for ep in md.entry_points(group=ENTRY_POINT_GROUP))
