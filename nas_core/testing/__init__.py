"""Testing kit for plugin authors (a pytest plugin, loaded automatically with nas-core).

Fixtures (no import needed in a test module):

- ``nas_kit``: a :class:`Kit` in a temporary folder -- ``nas_kit.config({...})``,
  ``nas_kit.open(...)``, ``nas_kit.train(...)``, ``nas_kit.search(...)``,
  ``nas_kit.train_and_search(...)`` run a tiny config (space ``tiny``, data
  ``tiny-synthetic``, 4 CPU steps) with your plugin registered in-process
  (``plugins=[my_package.plugin]``) or enabled from the config when installed;
  ``nas_kit.context(config, plugins=[...])`` and ``nas_kit.build(kind, spec, ...)`` give a
  component context or one built component, the way a run makes them.
- ``tiny_context``: the :class:`~nas_core.api.ComponentContext` of an untrained tiny run, to
  build one component directly: ``MySampler(tiny_context, MySamplerOptions())``.
- ``tiny_run``: that run itself (``tiny_run.context``, ``.space``, ``.supernet``, ...).
- ``tiny_space``, ``tiny_supernet``, ``tiny_data``: the stand-ins alone.
- ``hook_recorder``: a fresh :class:`HookRecorder`.
- ``torch_single_thread``: one torch thread for the test (``nas_kit`` and ``tiny_supernet`` use it).

Helpers: :func:`assert_lifecycle_order` checks recorded calls against the order documented in
:mod:`nas_core.hookspecs`; :func:`lifecycle_hook_names` lists the broadcast hooks.

Driving the real engine from a test (real data, a plugin's own config files, one step at a
time): :func:`open_run`, :class:`Trainer`, :func:`train`, :func:`search`, :func:`export`,
:func:`rank`, :func:`run_all`, :func:`load_trained_supernet`, :func:`export_subnet` and
:func:`run_cli` (the ``nas`` command in-process; returns its exit code).
"""

from nas_core.testing.engine import (
    Run,
    Trainer,
    export,
    export_subnet,
    load_trained_supernet,
    open_run,
    rank,
    run_all,
    run_cli,
    search,
    train,
)
from nas_core.testing.lifecycle import assert_lifecycle_order, documented_order
from nas_core.testing.recorder import Call, HookRecorder, lifecycle_hook_names
from nas_core.testing.runner import TINY_CONFIG, Kit, KitHost, KitResult, merge
from nas_core.testing.stand_in import synthetic_data, tiny_space

__all__ = [
    "TINY_CONFIG",
    "Call",
    "HookRecorder",
    "Kit",
    "KitHost",
    "KitResult",
    "Run",
    "Trainer",
    "assert_lifecycle_order",
    "documented_order",
    "export",
    "export_subnet",
    "lifecycle_hook_names",
    "load_trained_supernet",
    "merge",
    "open_run",
    "rank",
    "run_all",
    "run_cli",
    "search",
    "synthetic_data",
    "tiny_space",
    "train",
]
