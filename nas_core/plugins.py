"""Plugin discovery and the plugin manager.

Plugins are found through the ``nas_core.plugins`` entry-point group and loaded one at a time:
a plugin that fails to import is reported by name and skipped, unless the config needs it
(``plugins.enable``), in which case the run stops with that error. Misspelled hook
implementations fail loudly (``pm.check_pending``). The built-in components are a plugin too
and register through the same hooks.

A plugin whose registration hooks fail is taken out completely: whatever it registered is
removed from the registries and it is unregistered from the plugin manager, so none of its hooks
fire. Two plugins registering the same name is a warning, not an error: the name is ambiguous
only for a config that uses it, which then picks one as ``plugin:name``.

A plugin module may declare ``NAS_PLUGIN_REQUIRES = ["other"]``: the plugins it needs. They are
loaded with it (also when autoload is off), and a plugin whose requirement is disabled, missing
or broken is not loaded, with a message naming both.

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
from nas_core.errors import PluginError
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
        self._required_by: dict[str, str] = {}  # plugin -> a loaded plugin that needs it

        from nas_core import builtin

        self._register("builtin", builtin, PluginInfo("builtin", __version__, "nas-core"))
        self._discover()
        self._fill_registries()
        self._check_requirements()  # after registration: a needed plugin may have failed there
        self._warn_clashes()

    # ---------------------------------------------------------------- discovery

    def _discover(self) -> None:
        eps = {ep.name: ep for ep in md.entry_points(group=ENTRY_POINT_GROUP)}
        for name in self._enable:
            if name in self._disable:
                raise PluginError(f"plugin '{name}' is both enabled and disabled in the config")
            if name not in eps and name != "builtin":
                installed = ", ".join(sorted(eps)) or "none"
                raise PluginError(f"plugin '{name}' is enabled in the config but not installed (installed plugins: {installed})")
        pending = sorted(eps)
        while pending:
            name = pending.pop(0)
            if name in self.plugins:
                continue
            ep = eps[name]
            required = name in self._enable
            if not (required or name in self._required_by) and (
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
                continue
            except Exception as exc:  # a broken plugin must not stop the others
                info.error = f"{type(exc).__name__}: {exc}"
                self.plugins[name] = info
                if required:
                    raise PluginError(f"plugin '{name}' failed to load: {info.error}") from None
                warnings.warn(f"plugin '{name}' failed to load and is skipped: {info.error}", stacklevel=2)
                continue
            # what it needs is loaded with it, even when autoload would skip it
            for needed in requirements(module):
                if needed in eps and needed not in self.plugins and needed not in self._disable:
                    self._required_by.setdefault(needed, name)
                    pending.insert(0, needed)

    def _register(self, name: str, module: ModuleType, info: PluginInfo) -> None:
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(module)
            raise PluginError(f"plugin '{name}' is invalid: {exc}") from None
        info.module = module
        self.plugins[name] = info

    def _check_requirements(self) -> None:
        """A plugin whose required plugins are not loaded is taken out (or stops the run when
        the config needs it), naming what is missing and why."""
        changed = True
        while changed:  # taking one out may break another that needs it
            changed = False
            for name, info in list(self.plugins.items()):
                if not info.loaded:
                    continue
                for needed in requirements(info.module):
                    other = self.plugins.get(needed)
                    if other is not None and other.loaded:
                        continue
                    if needed in self._disable:
                        why = "disabled in the config (plugins.disable)"
                    elif other is not None:
                        why = f"not loaded ({other.error})"
                    elif needed in installed_plugin_names():
                        why = "not loaded"
                    else:
                        why = "not installed"
                    self._take_out(name, f"needs plugin '{needed}', which is {why}")
                    changed = True
                    break

    def _take_out(self, name: str, reason: str) -> None:
        """Undo a plugin: its registry entries go, its hooks stop firing; an error if needed."""
        info = self.plugins[name]
        if name in self._enable or name == "builtin":
            raise PluginError(f"plugin '{name}' {reason}")
        self.registries.remove_plugin(name)
        if info.module is not None and self.pm.is_registered(info.module):
            self.pm.unregister(info.module)
        info.error = reason
        info.registered = {}
        warnings.warn(f"plugin '{name}' is skipped: {reason}", stacklevel=3)

    def _fill_registries(self) -> None:
        """Call each plugin's registration hooks one plugin at a time, so entries know their
        plugin; a plugin whose registration raises is taken out with everything it registered."""
        for name, info in list(self.plugins.items()):
            if not info.loaded:
                continue
            api = _api_tuple(getattr(info.module, "NAS_PLUGIN_API", "")) if hasattr(info.module, "NAS_PLUGIN_API") else None
            self.registries.set_source(f"plugin '{name}' ({info.distribution} {info.version})", name, api)
            try:
                for hook_name, attr in REGISTRATION_HOOKS.items():
                    registry = getattr(self.registries, attr)
                    for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                        if impl.plugin is info.module:
                            try:
                                impl.function(registry=registry)
                            except Exception as exc:
                                raise _RegistrationFailed(f"{hook_name} failed: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc
            except _RegistrationFailed as failure:
                if name in self._enable or name == "builtin":
                    raise PluginError(f"plugin '{name}': {failure}") from None
                self._take_out(name, f"failed to register ({failure})")
                continue
            for attr, registry in self.registries.all().items():
                added = registry.of_plugin(name)
                if added:
                    info.registered[attr] = added

    def _warn_clashes(self) -> None:
        for registry in self.registries.all().values():
            for name, entries in registry.clashes().items():
                sources = " and ".join(e.source for e in entries)
                choices = ", ".join(f"'{e.qualified}'" for e in entries)
                warnings.warn(
                    f"{registry.kind} '{name}' is registered by {sources}; a config that uses it must say which: {choices}",
                    stacklevel=3,
                )

    # ---------------------------------------------------------------- queries

    def metadata(self) -> list[dict[str, Any]]:
        """Loaded plugins and versions, for every run's metadata."""
        return [
            {"name": p.name, "version": p.version, "distribution": p.distribution, "loaded": p.loaded, "error": p.error}
            for p in self.plugins.values()
        ]

    def hooks_of(self, name: str) -> list[str]:
        info = self.plugins.get(name)
        if info is None or info.module is None or not self.pm.is_registered(info.module):
            return []
        return sorted(hc.name for hc in (self.pm.get_hookcallers(info.module) or []))

    @property
    def hook(self) -> Any:
        return self.pm.hook


class _RegistrationFailed(Exception):
    """A registration hook of one plugin raised (the message says which and why)."""


def requirements(module: ModuleType | Any) -> list[str]:
    """The plugins a plugin module declares it needs (``NAS_PLUGIN_REQUIRES``)."""
    declared = getattr(module, "NAS_PLUGIN_REQUIRES", ())
    return [declared] if isinstance(declared, str) else [str(n) for n in declared]


def installed_plugin_names() -> list[str]:
    return sorted(ep.name for ep in md.entry_points(group=ENTRY_POINT_GROUP))
