"""OpenMMLab bridge: searched architectures as mmdet / mmseg backbones.

``custom_imports = dict(imports=["nas_downstream.mmlab"], allow_failed_imports=False)`` in an
mmdet or mmseg config registers

- ``NASBackbone`` in mmdet's and mmseg's ``MODELS``: any architecture of any registered search
  space as a multi-scale backbone, with weights from a supernet checkpoint, an exported subnet
  or none (:mod:`nas_downstream.backbone`);
- ``NASRunner`` in mmengine's ``RUNNERS``: mmengine's Runner whose resume fully unpickles only
  checkpoints it wrote itself in its own work directory (:mod:`nas_downstream.runner`).

``nas finetune`` writes a ready-to-run config from an exported architecture
(:mod:`nas_downstream.finetune`, arguments in :mod:`nas_downstream.cli`) with each task's pyramid
levels for any backbone (:mod:`nas_downstream.pyramid`), and estimates / measures what a training
iteration costs (:mod:`nas_downstream.cost`); ``python -m nas_downstream.train CONFIG`` runs it.
:mod:`nas_downstream.sample_data` lays out tiny COCO / Cityscapes / ADE20K folders from real
sample images for tests and benchmarks.
"""

from __future__ import annotations

__version__ = "0.1.0"

OPENMMLAB = ("mmengine", "mmcv", "mmdet", "mmseg")


def require_openmmlab() -> None:
    """Raise one NasError line when the OpenMMLab stack is missing or broken."""
    import importlib

    from nas_core.api import NasError

    for name in OPENMMLAB:
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or a broken mmcv build
            raise NasError(
                f"the OpenMMLab stack is not installed ({name}: {type(exc).__name__}: {str(exc).strip()[:120]}); "
                "install it with: bash scripts/install_openmmlab.sh .venv"
            ) from None
