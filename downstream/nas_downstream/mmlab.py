"""The module an mmdet / mmseg config imports (``custom_imports``) to use searched backbones.

Importing it registers ``NASBackbone`` in mmdet's and mmseg's ``MODELS`` and ``NASRunner`` in
mmengine's ``RUNNERS``; no OpenMMLab code is edited.
"""

from __future__ import annotations

from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.registry import RUNNERS
from mmseg.registry import MODELS as MMSEG_MODELS

from nas_downstream.backbone import NASBackbone
from nas_downstream.runner import NASRunner

# force=True: importing twice (custom_imports in several configs of one process) is harmless.
MMDET_MODELS.register_module(name="NASBackbone", module=NASBackbone, force=True)
MMSEG_MODELS.register_module(name="NASBackbone", module=NASBackbone, force=True)
RUNNERS.register_module(name="NASRunner", module=NASRunner, force=True)

__all__ = ["NASBackbone", "NASRunner"]
