"""The ScarletNAS ImageNet search space and the published SCARLET-A/B/C architectures.

Space (224x224 input): stem 3x3 stride-2 conv to 32 + BN + ReLU6, a separable conv to 16
(depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN), then 19 searchable MBConv layers with output
channels 32,32 | 40x4 | 80x4 | 96x4 | 192x4 | 320 and stride 2 at layers 0, 2, 6 and 14
(0-based), then a 1x1 conv to 1280 + BN + ReLU6, global pooling and a linear classifier.

Every layer offers 12 MBConv choices, kernel {3, 5, 7} x expansion {3, 6} x squeeze-excite
{off, on}, with hard-swish activations; SE reduces the hidden width by 4 with ReLU and gates
with hard-sigmoid. Layers that keep stride 1 and their channel count (13 of the 19) offer a
13th choice, ``Identity`` (a free skip, which makes depth searchable).

Choice index ``c < 12`` is ``kernel = (3, 5, 7)[c // 4]``, ``expansion = (3, 6)[(c // 2) % 2]``,
``se = c % 2``; index 12 is the skip. Architecture strings use one character per layer
(``0-9a-c``). The published networks are also accepted by name: ``SCARLET-A``, ``SCARLET-B``,
``SCARLET-C`` (per-layer choices from the authors' public model definitions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from torch import nn

from nas_core.api import ACTIVATIONS, Arch, ArchitectureError, FixedLayer, LayerSpec, MBConvSpace, OpSpec, Subnet, make_divisible

SPACE_NAME = "scarlet-imagenet"
KERNELS = (3, 5, 7)
EXPANSIONS = (3, 6)
# (output channels, stride) of the 19 searchable layers.
LAYOUT = (
    (32, 2), (32, 1),
    (40, 2), (40, 1), (40, 1), (40, 1),
    (80, 2), (80, 1), (80, 1), (80, 1),
    (96, 1), (96, 1), (96, 1), (96, 1),
    (192, 2), (192, 1), (192, 1), (192, 1),
    (320, 1),
)
STEM_CHANNELS, SEP_CHANNELS, HEAD_CHANNELS = 32, 16, 1280
SKIP = "skip"

# Published per-layer choices as (kernel, expansion, se) or SKIP, from the authors' model
# definitions (xiaomi-automl/SCARLET-NAS, models/Scarlet_{A,B,C}.py). Facts, not code.
PUBLISHED: dict[str, tuple] = {
    "SCARLET-A": (
        (7, 3, 0), (5, 6, 0),
        (5, 3, 0), (7, 3, 1), (3, 6, 1), (5, 3, 1),
        (3, 6, 1), (3, 3, 0), (7, 3, 1), (7, 3, 0),
        (5, 3, 0), (7, 3, 1), (3, 3, 0), (7, 3, 1),
        (3, 6, 1), (5, 6, 1), (3, 3, 1), (3, 6, 1),
        (7, 6, 1),
    ),
    "SCARLET-B": (
        (3, 3, 1), (5, 3, 1),
        (3, 3, 1), (7, 6, 1), (3, 3, 0), (5, 3, 0),
        (7, 6, 1), (3, 3, 1), SKIP, (5, 3, 0),
        (3, 3, 1), (3, 3, 1), (7, 6, 1), (3, 3, 1),
        (5, 6, 1), (5, 6, 1), SKIP, (7, 6, 1),
        (5, 6, 1),
    ),
    "SCARLET-C": (
        (5, 3, 1), (3, 3, 1),
        (5, 3, 1), SKIP, SKIP, (3, 3, 0),
        (7, 6, 1), (3, 3, 1), (3, 3, 1), (5, 3, 0),
        (7, 3, 1), (7, 3, 0), (3, 3, 1), (7, 3, 1),
        (3, 3, 1), SKIP, (3, 6, 1), (7, 6, 1),
        (5, 6, 1),
    ),
}
"""Reported ImageNet results: top-1 %, MACs, params (for the tests' 2% check)."""
REPORTED = {
    "SCARLET-A": (76.9, 365e6, 6.7e6),
    "SCARLET-B": (76.3, 329e6, 6.5e6),
    "SCARLET-C": (75.6, 280e6, 6.0e6),
}


def choice_index(kernel: int, expansion: int, se: int) -> int:
    return KERNELS.index(kernel) * 4 + EXPANSIONS.index(expansion) * 2 + int(se)


def mbconv_choices() -> tuple[OpSpec, ...]:
    choices = []
    for kernel in KERNELS:
        for expansion in EXPANSIONS:
            for se in (0, 1):
                params = dict(kernel=kernel, expansion=expansion, act="hswish")
                if se:
                    params.update(se_ratio=0.25, se_base="hidden", se_act="relu", se_gate="hsigmoid")
                choices.append(OpSpec.of(f"K{kernel}_E{expansion}" + ("_SE" if se else ""), "mbconv", **params))
    return tuple(choices)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 + BN + act, pointwise 1x1 + BN (no activation): the stem's second layer."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, act: str = "relu6"):
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            ACTIVATIONS[act](),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )


def build_sepconv(in_channels: int, out_channels: int, stride: int, act: str = "relu6") -> nn.Module:
    """Separable conv (depthwise 3x3 + BN + act, pointwise 1x1 + BN), as in MobileNet stems."""
    return SeparableConv(in_channels, out_channels, stride, act)


@dataclass(eq=False, kw_only=True)
class ScarletSpace(MBConvSpace):
    """:class:`MBConvSpace` whose ``decode`` also accepts the published names (``SCARLET-A``)."""

    def published(self, name: str) -> Arch:
        key = name.strip().upper().replace("_", "-")
        if key not in PUBLISHED:
            raise ArchitectureError(f"unknown published architecture '{name}' (known: {', '.join(PUBLISHED)})")
        skip = len(mbconv_choices())
        return self.validate([skip if c == SKIP else choice_index(*c) for c in PUBLISHED[key]])

    def decode(self, text: str) -> Arch:
        stripped = str(text).strip().upper().replace("_", "-")
        if stripped.startswith("SCARLET"):
            return self.published(stripped)
        return super().decode(text)

    def build_published(self, name: str) -> Subnet:
        """A freshly initialised standalone SCARLET-A/B/C."""
        return self.build_subnet(self.published(name))


def scarlet_space(width: float = 1.0, num_classes: int = 1000, input_size: int = 224, dropout: float = 0.0,
                  ops=None) -> ScarletSpace:
    """Build the ScarletNAS space; ``width`` scales every channel count (multiples of 8)."""

    def ch(c: int) -> int:
        return c if width == 1.0 else make_divisible(c * width)

    convs = mbconv_choices()
    with_skip = convs + (OpSpec.of("Identity", "skip"),)
    layers: list[LayerSpec] = []
    channels, base = ch(SEP_CHANNELS), SEP_CHANNELS
    for out, stride in LAYOUT:
        eligible = stride == 1 and out == base  # decided at width 1, so strings mean the same at every width
        layers.append(LayerSpec(channels, ch(out), stride, with_skip if eligible else convs))
        channels, base = ch(out), out
    space = ScarletSpace(
        name=SPACE_NAME,
        in_channels=3,
        stem=(
            FixedLayer("conv", ch(STEM_CHANNELS), kernel=3, stride=2, act="relu6"),
            FixedLayer("scarlet-sepconv", ch(SEP_CHANNELS), params=(("act", "relu6"),)),
        ),
        layers=tuple(layers),
        head=(FixedLayer("conv", ch(HEAD_CHANNELS), kernel=1, act="relu6"),),
        num_classes=num_classes,
        input_size=(input_size, input_size),
        dropout=dropout,
    )
    space.ops = dict(ops) if ops is not None else {**space.ops, "scarlet-sepconv": build_sepconv}
    return space


def published_names() -> Sequence[str]:
    return tuple(PUBLISHED)
