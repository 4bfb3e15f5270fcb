"""Fixtures of the Cream plugin tests: the tiny kit config with every Cream component."""

from __future__ import annotations

from typing import Any

import pytest

CREAM: dict[str, Any] = {
    "plugins": {"enable": ["cream"]},
    "sampler": {"name": "cream"},
    "teacher": {"name": "cream", "board_size": 4, "meta_update_every": 3, "meta_lr": 0.01},
    "regularizers": [{"name": "cream"}],
    "cream": {"warmup_steps": 4},
    "train": {"max_steps": 14, "scheduler": {"name": "constant"}},
}


@pytest.fixture
def cream_run(nas_kit):
    """An opened, untrained run on the tiny space with the Cream sampler, teacher and regularizer."""
    run, _ = nas_kit.open(CREAM)
    return run


@pytest.fixture
def cream_config() -> dict[str, Any]:
    import copy

    return copy.deepcopy(CREAM)
