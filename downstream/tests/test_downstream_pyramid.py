"""Pyramid rules: which backbone stages feed each task's neck, which levels extra stages add."""

from __future__ import annotations

import pytest

from nas_core.api import NasError
from nas_downstream.finetune import MASK_RCNN, RETINANET, UPERNET
from nas_downstream.pyramid import Stage, build_pyramid


def stages(*pairs):
    return tuple(Stage(i, channels, stride) for i, (stride, channels) in enumerate(pairs))


CIFAR = stages((2, 16), (4, 32), (8, 64))  # NAS-Bench-Macro at width 0.25
IMAGENET = stages((4, 32), (8, 40), (16, 96), (32, 320))  # SCARLET-A


def test_cifar_backbone_gets_the_usual_levels_from_extra_stages():
    retina = build_pyramid(CIFAR, RETINANET)
    assert (retina.out_indices, retina.extra_stages, retina.start_level) == ((2,), (128, 256), 0)
    assert retina.in_strides == [8, 16, 32] and retina.in_channels == [64, 128, 256]
    assert retina.out_strides == [8, 16, 32, 64, 128]
    mask = build_pyramid(CIFAR, MASK_RCNN)
    assert (mask.out_indices, mask.extra_stages) == ((1, 2), (128, 256))
    assert mask.in_strides == [4, 8, 16, 32] and mask.out_strides == [4, 8, 16, 32, 64]
    uper = build_pyramid(CIFAR, UPERNET)
    assert uper.in_strides == uper.out_strides == [4, 8, 16, 32] and uper.in_channels == [32, 64, 128, 256]
    assert any("not fed: strides [2, 4]" in line for line in retina.describe())


def test_imagenet_backbone_needs_no_extra_stage_and_skips_finer_stages():
    retina = build_pyramid(IMAGENET, RETINANET)
    assert (retina.out_indices, retina.extra_stages) == ((1, 2, 3), ())
    assert retina.in_channels == [40, 96, 320] and retina.out_strides == [8, 16, 32, 64, 128]
    assert build_pyramid(IMAGENET, MASK_RCNN).out_indices == (0, 1, 2, 3)
    deeper = stages((4, 32), (8, 40), (16, 96), (32, 320), (64, 640))
    assert build_pyramid(deeper, UPERNET).in_strides == [4, 8, 16, 32]  # ResNet's C5 is the deepest level fed


def test_a_backbone_finer_than_the_task_still_reaches_it():
    tiny = stages((2, 16))
    retina = build_pyramid(tiny, RETINANET)
    assert retina.extra_stages == (32, 64, 128, 256) and retina.start_level == 2  # strides 2 and 4 are not fed
    assert retina.in_strides == [8, 16, 32] and retina.out_strides == [8, 16, 32, 64, 128]


def test_levels_must_double():
    with pytest.raises(NasError, match="must double"):
        build_pyramid(stages((4, 32), (16, 64)), UPERNET)
    with pytest.raises(NasError, match="must double"):
        build_pyramid(CIFAR, RETINANET, out_indices=[0, 2])
    assert build_pyramid(CIFAR, UPERNET, out_indices=[2]).in_strides == [8, 16, 32]  # a user's choice is kept
