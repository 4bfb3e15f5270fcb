"""The kit's pytest plugin, registered through the ``pytest11`` entry point of nas-core.

Imports nothing heavy until a fixture is used, so it costs nothing in unrelated test runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from nas_core.testing import HookRecorder, Kit


@pytest.fixture
def torch_single_thread() -> Any:
    """Run the test with one torch thread (restored afterwards). Tiny networks gain nothing
    from more, and on a loaded machine OpenMP threads can slow them down a hundredfold."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def nas_kit(tmp_path, torch_single_thread) -> "Kit":
    """Run tiny configs with your plugin: ``nas_kit.train({...}, plugins=[my_plugin])``."""
    from nas_core.testing import Kit

    return Kit(tmp_path / "nas-kit")


@pytest.fixture
def tiny_run(nas_kit) -> Any:
    """An opened, untrained run on the tiny config (``tiny_run.context`` is what components get)."""
    run, _ = nas_kit.open()
    return run


@pytest.fixture
def tiny_context(tiny_run) -> Any:
    """The :class:`~nas_core.api.ComponentContext` of an untrained tiny run, to build a
    component by hand: ``MySampler(tiny_context, MySamplerOptions(period=3))``. For other
    plugins or settings use ``nas_kit.context(config, plugins=[...])``."""
    return tiny_run.context


@pytest.fixture
def tiny_space() -> Any:
    """The ``tiny`` stand-in search space (3 layers x 3 choices, 8x8 input, 4 classes)."""
    from nas_core.testing import tiny_space as build

    return build()


@pytest.fixture
def tiny_supernet(tiny_space, torch_single_thread) -> Any:
    """A freshly initialised supernet of the tiny space (seeded)."""
    import torch

    torch.manual_seed(0)
    return tiny_space.build_supernet()


@pytest.fixture
def tiny_data() -> Any:
    """The ``tiny-synthetic`` data set: 256 train / 64 val images, 3x8x8, 4 classes."""
    from nas_core.testing import synthetic_data

    return synthetic_data()


@pytest.fixture
def hook_recorder() -> "HookRecorder":
    """A fresh hook-call recorder (register it with ``pm.register(hook_recorder)``)."""
    from nas_core.testing import HookRecorder

    return HookRecorder()
