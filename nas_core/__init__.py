"""nas_core: a small one-shot neural architecture search engine built on pluggy hook points.

Everything a method contributes -- samplers, regularizers, teachers, evaluators, searchers,
search spaces, ops, data sets -- is registered through the hooks in :mod:`nas_core.hookspecs`.
The built-in baselines (SPOS, FairNAS, random and evolutionary search) use the same hooks as
third-party plugins. A plugin is a module with ``@hookimpl`` functions, published through an
entry point in its package's ``pyproject.toml``::

    [project.entry-points."nas_core.plugins"]
    my_plugin = "my_package.plugin"

and enabled by name in a run config (``plugins: {enable: [my_plugin]}``). What a plugin may
import is in :mod:`nas_core.api`; :mod:`nas_core.testing` is the kit for its tests.

An installed package can also add a ``nas`` subcommand (the OpenMMLab bridge adds
``nas finetune``) through the ``nas_core.commands`` group; the entry point names a
:class:`Command`::

    [project.entry-points."nas_core.commands"]
    finetune = "nas_downstream.cli:finetune"
"""

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable

import pluggy

PROJECT_NAME = "nas_core"
ENTRY_POINT_GROUP = "nas_core.plugins"
COMMAND_GROUP = "nas_core.commands"
PLUGIN_API_VERSION = "1.2"
"""The hook API version. A plugin declares ``NAS_PLUGIN_API = "1.1"`` (the version it was written for)."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

try:
    __version__ = version("nas-core")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"



@dataclass(frozen=True)
class Command:
    """A ``nas`` subcommand contributed by an installed package (entry point group
    ``nas_core.commands``, the entry point's name is the command's). ``add_arguments(parser)``
    declares its arguments on an argparse parser; ``run(args)`` does the work and returns an
    exit code (None: 0). A :class:`~nas_core.api.NasError` it raises is printed as one
    ``error:`` line with exit code 2, like every built-in command's. Keep the module that defines
    it light: ``nas --help`` imports it."""

    help: str
    add_arguments: Callable[[Any], None]
    run: Callable[[Any], int | None]


__all__ = ["COMMAND_GROUP", "ENTRY_POINT_GROUP", "PLUGIN_API_VERSION", "PROJECT_NAME", "Command", "hookimpl", "hookspec", "__version__"]
