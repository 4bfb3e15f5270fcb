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


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """Export folders by space name, made on first use."""
    from nas_downstream.sample_data import make_export

    made: dict[str, Path] = {}

    def get(space: str) -> Path:
        if space not in made:
            made[space] = make_export(space, tmp_path_factory.mktemp(f"export-{space}"))
        return made[space]

    return get


@pytest.fixture(scope="session")
def sample_layouts(mm_fixtures, tmp_path_factory) -> dict[str, Path]:
    """COCO / Cityscapes / ADE20K-layout folders built from the real fixtures (nas_downstream.sample_data)."""
    from nas_downstream.sample_data import build_layouts

    return build_layouts(mm_fixtures, tmp_path_factory.mktemp("layouts"))


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
