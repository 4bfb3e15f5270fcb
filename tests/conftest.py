"""Shared fixtures: the real data folder and one trained tiny supernet per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas_core.config import data_root
from nas_test_helpers import REPO, nas, tiny_overrides


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = data_root()
    if not (root / "cifar10").is_dir():
        pytest.fail(f"real data not found at {root}: set NAS_DATA to the shared data folder")
    return root


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, shared_data) -> Path:
    """A tiny SPOS supernet trained for 40 steps on real CIFAR-10 (run dir path)."""
    run_dir = tmp_path_factory.mktemp("tiny-supernet")
    nas("train", str(REPO / "tests" / "base.yaml"), *tiny_overrides(run_dir, "train.max_steps=100", "train.optimizer.lr=0.05", "train.scheduler.warmup_steps=10", "data.train_subset=5000", "train.log_every_steps=20"), check=True)
    return run_dir
