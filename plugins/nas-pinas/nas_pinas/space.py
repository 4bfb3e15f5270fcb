"""The Pi-NAS search space: a ResNeSt-50-D-like network with 16 searchable bottleneck blocks.

Deep stem (3x3 convs 32, 32, 64, all stride 1 except the first, then a 3x3 stride-2 max-pool),
stages of 3/4/6/3 bottleneck blocks with 64/128/256/512 planes (x4 expansion), global pool,
linear classifier. Every block picks (radix, cardinality, base width) from
``(1,1,64), (2,1,64), (1,2,42), (2,2,40)``; there is no skip choice, so all 4^16 paths are
distinct. Blocks are split-attention bottlenecks with the ResNet-D tricks: the stride of a
downsampling block sits in a 3x3 average pool after the 3x3 conv, and the shortcut is average
pool + 1x1 conv + BN.

The first block of each stage has a shortcut projection that is SHARED by its four candidates
(one module object referenced by each candidate). So ``ChoiceBlock.extract(c)`` -- the candidate
itself -- includes the shared downsample: extracted subnets, ``space.complexity`` and the state
dict key mapping of :func:`nas_core.spaces.supernet.inherit_state_dict` all see the whole block.

Named architectures (the published choice indices, one per block, stage by stage):
``pinas-cls`` (ImageNet classification, 27.1M params, 5.38 GFLOPs at 224) and ``pinas-trans``
(the backbone transferred to detection and segmentation). ``space.decode`` accepts these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas_core.api import Arch, ArchitectureError, ChoiceBlock, LayerSpec, OpSpec, SearchSpace, Subnet, Supernet

STAGES = ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2))
EXPANSION = 4
CANDIDATES = ((1, 1, 64), (2, 1, 64), (1, 2, 42), (2, 2, 40))
"""(radix, cardinality, base width) of the four candidates of every block."""

NAMED_ARCHS = {
    "pinas-cls": "3013231203213032",
    "pinas-trans": "3333113330011021",
}
"""Published choice indices (Pi-NAS README: ``--choice-indices``)."""


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SplitAttentionConv(nn.Module):
    """3x3 grouped conv producing ``radix`` splits, fused by per-channel attention.

    Attention: sum the splits, global pool, grouped 1x1 to ``max(32, in*radix/4)`` + BN + ReLU,
    grouped 1x1 back to ``channels * radix``, softmax across splits (sigmoid when radix is 1).
    """

    def __init__(self, in_channels: int, channels: int, stride: int, cardinality: int, radix: int):
        super().__init__()
        self.radix, self.cardinality = radix, cardinality
        inter = max(in_channels * radix // 4, 32)
        self.conv = nn.Conv2d(in_channels, channels * radix, 3, stride, 1, groups=cardinality * radix, bias=False)
        self.bn0 = nn.BatchNorm2d(channels * radix)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(channels, inter, 1, groups=cardinality)
        self.bn1 = nn.BatchNorm2d(inter)
        self.fc2 = nn.Conv2d(inter, channels * radix, 1, groups=cardinality)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn0(self.conv(x)))
        n, c = x.shape[:2]
        if self.radix > 1:
            splits = x.view(n, self.radix, c // self.radix, *x.shape[2:])
            gap = splits.sum(1)
        else:
            gap = x
        gap = F.adaptive_avg_pool2d(gap, 1)
        att = self.fc2(F.relu(self.bn1(self.fc1(gap))))
        if self.radix > 1:
            att = att.view(n, self.cardinality, self.radix, -1).transpose(1, 2).softmax(1)
            att = att.reshape(n, self.radix, c // self.radix, 1, 1)
            return (att * splits).sum(1)
        return torch.sigmoid(att) * x


class ResNeStBottleneck(nn.Module):
    """1x1 reduce -> split-attention 3x3 -> (avg-pool stride) -> 1x1 expand, plus the shortcut."""

    def __init__(self, in_channels: int, planes: int, stride: int, radix: int, cardinality: int, base_width: int,
                 downsample: nn.Module | None, avd: bool):
        super().__init__()
        per_group = int(planes * base_width / 64)
        per_group = max(radix, per_group // radix * radix)  # splits must divide evenly (no-op at width 1.0)
        width = per_group * cardinality
        self.conv1 = nn.Sequential(*_conv_bn_relu(in_channels, width, 1))
        self.conv2 = SplitAttentionConv(width, width, 1 if avd else stride, cardinality, radix)
        self.avd = nn.AvgPool2d(3, stride, padding=1) if avd else nn.Identity()
        self.conv3 = nn.Sequential(nn.Conv2d(width, planes * EXPANSION, 1, bias=False), nn.BatchNorm2d(planes * EXPANSION))
        self.downsample = downsample if downsample is not None else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.avd(self.conv2(self.conv1(x))))
        return self.relu(out + self.downsample(x))


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """ResNet-D projection: average pool (when strided) then 1x1 conv + BN."""
    pool: list[nn.Module] = [nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)] if stride > 1 else []
    return nn.Sequential(*pool, nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))


@dataclass(eq=False)
class PiNasSpace(SearchSpace):
    """16 ResNeSt bottleneck blocks x 4 candidates. ``width`` scales every channel count;
    ``small_input`` swaps the deep stem's stride-2 conv and max-pool for stride 1 (32x32 data)."""

    width: float = 1.0
    num_classes: int = 1000
    image_size: int = 224
    small_input: bool = False

    def __post_init__(self) -> None:
        self.name = "pinas-resnest"
        self.input_size = (self.image_size, self.image_size)
        self.stem_width = self._ch(32)
        self.stem_stride = 1 if self.small_input else 4
        layers, channels = [], self.stem_width * 2
        self._block_cfg: list[tuple[int, int, int, bool, bool]] = []  # (in, planes, stride, first, avd)
        for stage, (depth, planes, stride) in enumerate(STAGES):
            planes = self._ch(planes)
            for i in range(depth):
                s = stride if i == 0 else 1
                choices = tuple(OpSpec.of(f"r{r}c{c}w{w}", "resnest", radix=r, cardinality=c, base_width=w) for r, c, w in CANDIDATES)
                layers.append(LayerSpec(channels, planes * EXPANSION, s, choices))
                # ResNeSt: the strided 3x3 becomes avg-pool in every downsampling block; stage 1's
                # first block (stride 1) has no avg-pool.
                self._block_cfg.append((channels, planes, s, i == 0, s > 1))
                channels = planes * EXPANSION
        self.layers = tuple(layers)

    def _ch(self, c: int) -> int:
        return c if self.width == 1.0 else max(8, int(round(c * self.width / 8)) * 8)

    def build_supernet(self) -> Supernet:
        sw = self.stem_width
        first_stride = 1 if self.small_input else 2
        stem_layers = [*_conv_bn_relu(3, sw, 3, first_stride), *_conv_bn_relu(sw, sw, 3), *_conv_bn_relu(sw, sw * 2, 3)]
        if not self.small_input:
            stem_layers.append(nn.MaxPool2d(3, 2, 1))
        blocks = []
        for in_ch, planes, stride, first, avd in self._block_cfg:
            shared = shortcut(in_ch, planes * EXPANSION, stride) if first else None
            candidates = [ResNeStBottleneck(in_ch, planes, stride, r, c, w, shared, avd) for r, c, w in CANDIDATES]
            blocks.append(ChoiceBlock(candidates))
        channels = self.layers[-1].out_channels
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        return Supernet(nn.Sequential(*stem_layers), blocks, head, nn.Linear(channels, self.num_classes))

    # ------------------------------------------------------------ named architectures

    def decode(self, text: str) -> Arch:
        """Architecture strings, or a published name (``pinas-cls``, ``pinas-trans``)."""
        key = str(text).strip().lower()
        return super().decode(NAMED_ARCHS.get(key, text))

    def named(self, name: str) -> Arch:
        if name not in NAMED_ARCHS:
            raise ArchitectureError(f"unknown Pi-NAS architecture '{name}' (known: {', '.join(NAMED_ARCHS)})")
        return super().decode(NAMED_ARCHS[name])


def pinas_resnest(width: float = 1.0, num_classes: int = 1000, image_size: int = 224, small_input: bool = False, ops=None) -> PiNasSpace:
    """The Pi-NAS ResNeSt-50-D-like space (16 blocks x 4 split-attention candidates)."""
    return PiNasSpace(width=width, num_classes=num_classes, image_size=image_size, small_input=small_input)


def build_named(name: str, num_classes: int = 1000, **options) -> Subnet:
    """A freshly initialised standalone network of a published Pi-NAS architecture."""
    space = pinas_resnest(num_classes=num_classes, **options)
    return space.build_subnet(space.named(name))
