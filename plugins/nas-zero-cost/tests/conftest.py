"""Fixtures shared by the zero-cost plugin's tests."""

from __future__ import annotations

import pytest

from nas_core.api import DataError
from nas_zero_cost import plugin


@pytest.fixture
def macro_run(nas_kit):
    """NAS-Bench-Macro at the study's width 0.25 on real CIFAR-10 images (skips without the data)."""
    config = {"space": {"name": "nas-bench-macro", "width": 0.25}, "data": {"name": "cifar10", "train_subset": 500, "val_subset": 100}, "evaluator": {"name": "naswot"}}
    try:
        run, _ = nas_kit.open(config, plugins=[plugin])
        run.data
    except DataError as exc:
        pytest.skip(str(exc))
    return run
