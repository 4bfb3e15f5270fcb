"""nas_core: a small one-shot neural architecture search engine built on pluggy hook points.

Everything a method contributes -- samplers, regularizers, teachers, evaluators, searchers,
search spaces, ops, data sets -- is registered through the hooks in :mod:`nas_core.hookspecs`.
The built-in baselines (SPOS, FairNAS, random and evolutionary search) use the same hooks as
third-party plugins. A plugin is a module with ``@hookimpl`` functions, published through an
entry point in its package's ``pyproject.toml``::

    [project.entry-points."nas_core.plugins"]
    my_plugin = "my_package.plugin"

and enabled by name in a run config (``plugins: {enable: [my_plugin]}``).
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

PROJECT_NAME = "nas_core"
ENTRY_POINT_GROUP = "nas_core.plugins"
PLUGIN_API_VERSION = "1.1"
"""The hook API version. A plugin declares ``NAS_PLUGIN_API = "1"`` (the major it was written for)."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

try:
    __version__ = version("nas-core")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["ENTRY_POINT_GROUP", "PLUGIN_API_VERSION", "PROJECT_NAME", "hookimpl", "hookspec", "__version__"]
