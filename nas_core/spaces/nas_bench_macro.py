"""The NAS-Bench-Macro space (CIFAR-10), exactly as the benchmark's networks were built.

Stem 3x3 conv to 32 + BN + ReLU; three stages of [2, 3, 3] searchable layers with 64, 128, 256
channels, the first layer of each stage with stride 2; head 1x1 conv to 1280 + BN + ReLU,
global pool, linear to 10. Choices per layer: ``0`` Identity (a 1x1 stride-2 conv + BN in a
stage's first layer), ``1`` MB3_K3, ``2`` MB6_K5; ReLU inverted residuals without SE.
``width`` scales every channel count (rounded to multiples of 8) for cheaper proxy runs.
"""

from __future__ import annotations

from nas_core.spaces.ops import make_divisible
from nas_core.spaces.space import FixedLayer, LayerSpec, MBConvSpace, OpSpec

STAGES = ((2, 64), (3, 128), (3, 256))
CHOICES = (
    OpSpec.of("Identity", "skip"),
    OpSpec.of("MB3_K3", "mbconv", kernel=3, expansion=3, act="relu"),
    OpSpec.of("MB6_K5", "mbconv", kernel=5, expansion=6, act="relu"),
)


def nas_bench_macro(width: float = 1.0, num_classes: int = 10, ops=None) -> MBConvSpace:
    """Build the NAS-Bench-Macro space at a width multiplier (1.0 = the benchmark's networks)."""

    def ch(c: int) -> int:
        return c if width == 1.0 else make_divisible(c * width)

    layers = []
    channels = ch(32)
    for depth, out in STAGES:
        for i in range(depth):
            layers.append(LayerSpec(channels, ch(out), 2 if i == 0 else 1, CHOICES))
            channels = ch(out)
    space = MBConvSpace(
        name="nas-bench-macro",
        in_channels=3,
        stem=(FixedLayer("conv", ch(32), kernel=3, stride=1, act="relu"),),
        layers=tuple(layers),
        head=(FixedLayer("conv", ch(1280), kernel=1, act="relu"),),
        num_classes=num_classes,
        input_size=(32, 32),
    )
    if ops is not None:
        space.ops = ops
    return space
