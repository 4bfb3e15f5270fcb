"""The Cream ImageNet search space and the published Cream models, as data.

Network (Cream, NeurIPS 2020): stem 3x3 stride-2 conv to 16 + BN + Swish; a fixed depthwise-
separable block (3x3, 16 channels, SE 0.25, residual); five searchable stages with 24 / 40 /
80 / 96 / 192 channels, the first block of each with stride 2 except the 96 stage; a fixed 1x1
conv to 320 + BN + Swish; global pool; 1x1 conv to 1280 (with bias) + Swish; linear classifier.
Every searchable layer picks one of 6 inverted residuals (kernel, expansion) =
k3e4, k3e6, k5e4, k5e6, k7e4, k7e6 (choice indices 0-5), all with squeeze-excitation
(ratio 0.25 of the expanded width, rounded to multiples of 8, ReLU, hard-sigmoid gate). No skip.

Per-stage depth and input resolution are fitted to a MACs interval (:func:`fit_depths`): the
largest resolution (multiple of 32, at most 224) at which the smallest 1-layer-per-stage
network stays below the upper bound, then layers are added stage by stage (80, 96, 192, 40, 24
channel stages in turn, at most ``max_depth`` each) while the LARGEST architecture still fits.
MACs come from the engine's FLOPs counter on per-op tables (``space.complexity``).

Published models (:data:`PUBLISHED`, architecture choices from the authors' release):
``cream-14m``, ``cream-43m``, ``cream-114m``, ``cream-s`` (287M), ``cream-m`` (481M),
``cream-l`` (604M); :func:`published_model` gives (space, arch), :func:`build_published` the
network. Two facts about the released models, both checked against the reported MACs:

- The released builder keeps a stage's DEFAULT op (24: k3e4, 40: k5e4, 80: k3e6, 96: k3e6,
  192: k5e6) when the stage has a single layer, whatever its listed choice; the trained networks
  and their reported MACs are those networks, so :attr:`Published.arch` applies that rule.
- The reported MACs come from a counter (thop) that also charges 2 operations per BatchNorm
  output element. :func:`published_macs` gives both our conv + linear MACs (the engine's
  ``count_macs``; 3.7% / 4.2% below the reported Cream-S / Cream-L numbers) and the count in
  the authors' convention (within 2% of all six reported numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

import torch
from pydantic import Field
from torch import nn

from nas_core.api import Arch, FixedLayer, LayerSpec, MBConvSpace, NasError, OpSpec, Section, Subnet, count_macs

STAGES = ((24, 2), (40, 2), (80, 2), (96, 1), (192, 2))
"""(output channels, stride of the first block) of the five searchable stages."""
STAGE_DEFAULT_OP = (0, 2, 1, 1, 3)
"""The op a single-layer stage gets in the released models (k3e4, k5e4, k3e6, k3e6, k5e6)."""
OPS = tuple((k, e) for k in (3, 5, 7) for e in (4, 6))
GROW_ORDER = (2, 3, 4, 1, 0)
_SE = dict(se_ratio=0.25, se_base="hidden", act="swish", se_act="relu", se_gate="hsigmoid", se_divisor=8)
CHOICES = tuple(OpSpec.of(f"k{k}e{e}", "mbconv", kernel=k, expansion=e, **_SE) for k, e in OPS)


@dataclass(frozen=True)
class Published:
    name: str
    depths: tuple[int, ...]
    resolution: int
    stages: tuple[tuple[int, ...], ...]
    """Choice index (0-5) of every layer, per stage, as listed in the release."""
    macs: float
    """MACs the authors report."""
    top1: float | None

    @property
    def arch(self) -> Arch:
        """The network actually built and trained (single-layer stages keep their default op)."""
        built = [(STAGE_DEFAULT_OP[i],) if len(stage) == 1 else stage for i, stage in enumerate(self.stages)]
        return tuple(c for stage in built for c in stage)


def _published(name: str, resolution: int, macs: float, top1: float | None, *stages: tuple[int, ...]) -> Published:
    return Published(name, tuple(len(s) for s in stages), resolution, tuple(stages), macs, top1)


PUBLISHED: dict[str, Published] = {
    p.name: p
    for p in (
        _published("cream-14m", 64, 14e6, 53.8, (3,), (3, 3), (3, 3), (3,), (3,)),
        _published("cream-43m", 96, 43e6, None, (3,), (3, 1), (3, 1), (3, 3, 3), (3, 3)),
        _published("cream-114m", 160, 114e6, None, (3,), (3, 3), (3, 3), (3, 3, 3), (3, 3)),
        _published("cream-s", 224, 287e6, 77.6, (3,), (3, 3), (3, 1, 3), (3, 3, 3, 3), (3, 3, 3)),
        _published("cream-m", 224, 481e6, 79.2, (3, 4, 3, 1), (3, 2, 3, 0), (3, 3, 3, 1, 1), (3, 3, 3, 3), (3, 3, 3, 3)),
        _published("cream-l", 224, 604e6, 80.0, (3, 3, 2, 3, 3), (3, 2, 3, 2, 3), (3, 2, 3, 2, 3), (3, 3, 2, 2, 3, 3), (3, 3, 2, 3, 3, 3)),
    )
}


def cream_space(depths: Sequence[int], resolution: int = 224, num_classes: int = 1000, dropout: float = 0.0,
                ops: Mapping[str, Any] | None = None) -> MBConvSpace:
    """The Cream space with the given number of searchable layers per stage."""
    depths = tuple(int(d) for d in depths)
    if len(depths) != len(STAGES) or min(depths) < 1:
        raise NasError(f"space 'cream-imagenet': depths must be {len(STAGES)} positive numbers, got {list(depths)}")
    layers, channels = [], 16
    for depth, (out, stride) in zip(depths, STAGES):
        for i in range(depth):
            layers.append(LayerSpec(channels, out, stride if i == 0 else 1, CHOICES))
            channels = out
    space = MBConvSpace(
        name="cream-imagenet",
        in_channels=3,
        stem=(
            FixedLayer("conv", 16, kernel=3, stride=2, act="swish"),
            FixedLayer("mbconv", 16, params=tuple(sorted(dict(kernel=3, expansion=1, **_SE).items()))),
        ),
        layers=tuple(layers),
        head=(FixedLayer("conv", 320, kernel=1, act="swish"),),
        head_after_pool=(FixedLayer("conv_nobn", 1280, kernel=1, act="swish"),),
        num_classes=num_classes,
        input_size=(resolution, resolution),
        dropout=dropout,
    )
    if ops is not None:
        space.ops = dict(ops)
    return space


@lru_cache(maxsize=16)
def _stage_macs(resolution: int) -> tuple[int, list[list[list[int]]]]:
    """(fixed MACs, per stage: [first layer, any later layer]: MACs of each op) at ``resolution``.

    Later layers of a stage all have the same shape, so a 2-layer-per-stage table is enough.
    """
    space = cream_space([2] * len(STAGES), resolution)
    fixed, _, table = space._complexity_table
    return fixed, [[[m for m, _ in table[2 * s + i]] for i in range(2)] for s in range(len(STAGES))]


def fit_depths(min_macs: float | None, max_macs: float, max_depth: int = 4, resolution: int | None = None) -> tuple[tuple[int, ...], int]:
    """(depths per stage, input resolution) of the largest space whose largest arch fits ``max_macs``.

    With ``resolution`` given only that resolution is tried; otherwise 224, 192, ..., 32.
    """
    for resolution in [resolution] if resolution else range(224, 31, -32):
        fixed, stages = _stage_macs(resolution)
        smallest = fixed + sum(min(stage[0]) for stage in stages)
        if smallest > max_macs:
            continue
        depths = [1] * len(STAGES)

        def largest(ds: Sequence[int]) -> int:
            return fixed + sum(max(stages[s][min(i, 1)]) for s, d in enumerate(ds) for i in range(d))

        grown = True
        while grown:
            grown = False
            for s in GROW_ORDER:
                if depths[s] < max_depth:
                    trial = list(depths)
                    trial[s] += 1
                    if largest(trial) <= max_macs:
                        depths = trial
                        grown = True
        if min_macs is not None and largest(depths) < min_macs:
            raise NasError(
                f"space 'cream-imagenet': no depth up to {max_depth} per stage reaches min_mmacs {min_macs / 1e6:.4g} "
                f"below max_mmacs {max_macs / 1e6:.4g} (largest fitting architecture: {largest(depths) / 1e6:.4g} M MACs)"
            )
        return tuple(depths), resolution
    raise NasError(f"space 'cream-imagenet': even the smallest network at {resolution}x{resolution} input exceeds max_mmacs {max_macs / 1e6:.4g}")


class CreamSpaceOptions(Section):
    preset: str | None = Field(None, description="a published model's space: " + ", ".join(PUBLISHED))
    depths: list[int] | None = Field(None, description="searchable layers per stage (5 numbers); default: fitted to the MACs interval")
    resolution: int | None = Field(None, gt=0, description="input resolution; default: fitted to the MACs interval")
    min_mmacs: float | None = Field(None, ge=0, description="lower end of the MACs interval (millions)")
    max_mmacs: float = Field(600.0, gt=0, description="upper end of the MACs interval (millions)")
    max_depth: int = Field(4, gt=0)
    num_classes: int = Field(1000, gt=1)
    dropout: float = Field(0.0, ge=0, lt=1)


def cream_imagenet(ops: Mapping[str, Any] | None = None, preset: str | None = None, depths: list[int] | None = None,
                   resolution: int | None = None, min_mmacs: float | None = None, max_mmacs: float = 600.0,
                   max_depth: int = 4, num_classes: int = 1000, dropout: float = 0.0) -> MBConvSpace:
    """The Cream ImageNet space: a published model's depths, explicit depths, or fitted to a MACs interval."""
    if preset is not None:
        if preset not in PUBLISHED:
            raise NasError(f"space 'cream-imagenet': unknown preset '{preset}' (available: {', '.join(PUBLISHED)})")
        p = PUBLISHED[preset]
        return cream_space(p.depths, resolution or p.resolution, num_classes, dropout, ops)
    if depths is None:
        fitted, fitted_res = fit_depths(None if min_mmacs is None else min_mmacs * 1e6, max_mmacs * 1e6, max_depth, resolution)
        return cream_space(fitted, fitted_res, num_classes, dropout, ops)
    return cream_space(depths, resolution or 224, num_classes, dropout, ops)


def published_model(name: str, num_classes: int = 1000) -> tuple[MBConvSpace, Arch]:
    """A published Cream model as (its space, its architecture)."""
    if name not in PUBLISHED:
        raise NasError(f"unknown Cream model '{name}' (available: {', '.join(PUBLISHED)})")
    p = PUBLISHED[name]
    return cream_space(p.depths, p.resolution, num_classes), p.arch


def build_published(name: str, num_classes: int = 1000) -> Subnet:
    """The standalone (freshly initialised) network of a published Cream model."""
    space, arch = published_model(name, num_classes)
    return space.build_subnet(arch)


def published_macs(name: str) -> dict[str, float]:
    """MACs of a published model: ``macs`` (conv + linear, the engine's counter), ``thop_style``
    (plus 2 per BatchNorm output element, the convention of the reported numbers), ``reported``."""
    space, arch = published_model(name)
    with torch.device("meta"):
        net = space.build_subnet(arch)
        x = torch.empty(1, 3, *space.input_size)
    net.eval()
    elements = [0]
    hooks = [m.register_forward_hook(lambda m, i, o: elements.__setitem__(0, elements[0] + o.numel()))
             for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        macs = count_macs(net, x)
    for h in hooks:
        h.remove()
    return {"macs": float(macs), "thop_style": float(macs + 2 * elements[0]), "reported": PUBLISHED[name].macs}
