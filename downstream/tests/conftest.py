"""Fixtures of the OpenMMLab bridge tests: the real fixtures folder, small CPU settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nas_core.api import data_root

try:  # without the OpenMMLab stack (setup.sh --no-openmmlab) these tests are not collected
    import mmdet  # noqa: F401
    import mmseg  # noqa: F401
except ImportError:
    collect_ignore_glob = ["test_downstream_*.py"]


@pytest.fixture(scope="session")
def mm_fixtures() -> Path:
    root = data_root() / "openmmlab-fixtures"
    if not (root / "coco" / "coco_sample_color.json").is_file():
        pytest.fail(f"OpenMMLab fixtures not found at {root}: set NAS_DATA to the shared data folder")
    return root


@pytest.fixture(autouse=True)
def _fresh_visualizers():
    """Every test starts without mmengine visualizers. mmdet's and mmseg's default runtimes name
    theirs 'visualizer', and mmengine keeps one instance per name per process, so a second Runner
    reuses the first one's, saving into the first test's work directory, which may be gone by
    then (a shuffled order failed that way, issue 17)."""
    _forget_visualizers()
    yield
    _forget_visualizers()


def _forget_visualizers() -> None:
    from mmengine.visualization import Visualizer

    classes = [Visualizer]
    while classes:  # every ManagerMixin class keeps its own instances
        cls = classes.pop()
        cls._instance_dict.clear()
        classes.extend(cls.__subclasses__())


@pytest.fixture(autouse=True)
def _no_global_unpickling():
    """The weights_only default must never be switched off for the process."""
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ
    yield
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ
