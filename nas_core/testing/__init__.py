"""Testing kit for plugin authors (a pytest plugin, loaded automatically with nas-core).

Fixtures (no import needed in a test module):

- ``nas_kit``: a :class:`Kit` in a temporary folder -- ``nas_kit.config({...})``,
  ``nas_kit.open(...)``, ``nas_kit.train(...)``, ``nas_kit.search(...)``,
  ``nas_kit.train_and_search(...)`` run a tiny config (space ``tiny``, data
  ``tiny-synthetic``, 4 CPU steps) with your plugin registered in-process
  (``plugins=[my_package.plugin]``) or enabled from the config when installed.
- ``tiny_run``: an opened (untrained) :class:`~nas_core.run.Run` on the tiny config, to build
  and call one component directly: ``MySampler(tiny_run, **options)``.
- ``tiny_space``, ``tiny_supernet``, ``tiny_data``: the stand-ins alone.
- ``hook_recorder``: a fresh :class:`HookRecorder`.
- ``torch_single_thread``: one torch thread for the test (``nas_kit`` and ``tiny_supernet`` use it).

Helpers: :func:`assert_lifecycle_order` checks recorded calls against the order documented in
:mod:`nas_core.hookspecs`; :func:`lifecycle_hook_names` lists the broadcast hooks.
"""

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
    "assert_lifecycle_order",
    "documented_order",
    "lifecycle_hook_names",
    "merge",
    "synthetic_data",
    "tiny_space",
]
