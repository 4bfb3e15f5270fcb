"""Feature pyramids by the conventions of each task, for any backbone.

Detection and segmentation heads are designed for fixed pyramid levels, whatever the backbone:

- RetinaNet: FPN levels P3-P7 (strides 8-128); FPN inputs C3-C5, P6 and P7 from stride-2 convs
  on C5 (mmdet: ``start_level``, ``add_extra_convs="on_input"``);
- Mask R-CNN: FPN levels P2-P6 (strides 4-64); FPN inputs C2-C5, P6 by max-pooling P5; RoI
  features from P2-P5;
- UPerNet: decoder inputs C2-C5 (strides 4-32), the auxiliary FCN head on C4.

A searched backbone's stages (``space.feature_info()``: channels and stride of the end of each
resolution, like timm's ``FeatureInfo``) are mapped onto these levels: stages finer than the
task's finest input level are not fed to the neck (their activations at stride 2 would cost
gigabytes and millions of anchors), and input levels the backbone lacks up to C5 are made by
extra stride-2 stages appended to the backbone (``NASBackbone(extra_stages=...)``, channels
doubling). So a CIFAR-style backbone whose deepest stride is 8 (NAS-Bench-Macro) still yields
the usual pyramid, and anchor / RoI strides are derived from what the neck then outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from nas_core.api import NasError

C5_STRIDE = 32  # the deepest backbone level every task's neck takes (ResNet's C5)


@dataclass(frozen=True)
class Convention:
    """A task's pyramid: the finest backbone level its neck takes and its coarsest output."""

    finest: int  # stride of the finest backbone level fed to the neck (C3 = 8, C2 = 4)
    coarsest: int  # stride of the neck's coarsest output (P7 = 128, P6 = 64, C5 = 32)
    neck: str  # "fpn" (detection) or "decoder" (UPerNet: outputs are its inputs)

    @property
    def levels(self) -> str:
        first, last = self.finest.bit_length() - 1, self.coarsest.bit_length() - 1
        return f"P{first}-P{last}" if self.neck == "fpn" else f"C{first}-C{last}"


@dataclass(frozen=True)
class Stage:
    """One backbone output: the ``feature_info`` index it comes from (None for an extra stage)."""

    index: int | None
    channels: int
    stride: int


@dataclass(frozen=True)
class Pyramid:
    """What a task's neck receives and outputs for one backbone."""

    convention: Convention
    backbone: tuple[Stage, ...]  # every stage of the backbone (feature_info)
    out_indices: tuple[int, ...]  # backbone stages output (the neck inputs among them)
    extra_stages: tuple[int, ...]  # channels of the stride-2 stages appended after the deepest
    start_level: int  # backbone outputs before this one are finer than the task takes (normally 0)

    @property
    def outputs(self) -> tuple[Stage, ...]:
        """Everything the backbone returns: the chosen stages, then the extra stages."""
        chosen = [self.backbone[i] for i in self.out_indices]
        stride, extras = chosen[-1].stride, []
        for channels in self.extra_stages:
            stride *= 2
            extras.append(Stage(None, channels, stride))
        return (*chosen, *extras)

    @property
    def inputs(self) -> tuple[Stage, ...]:
        """The backbone outputs the neck / decoder uses."""
        return self.outputs[self.start_level:]

    @property
    def in_channels(self) -> list[int]:
        return [s.channels for s in self.inputs]

    @property
    def in_strides(self) -> list[int]:
        return [s.stride for s in self.inputs]

    @property
    def out_strides(self) -> list[int]:
        """Strides of the neck's outputs: the inputs, then FPN extra levels up to the coarsest."""
        strides = self.in_strides
        if self.convention.neck == "fpn":
            while strides[-1] < self.convention.coarsest:
                strides = [*strides, strides[-1] * 2]
        return strides

    def describe(self) -> list[str]:
        """Human-readable lines: the backbone, what is fed, what is added, what the neck outputs."""
        stages = ", ".join(f"{s.stride}:{s.channels}" for s in self.backbone)
        used = [s for s in self.inputs if s.index is not None]
        extra = [s for s in self.outputs if s.index is None]
        lines = [f"backbone stages (stride:channels): {stages}"]
        unused = [s.stride for s in self.backbone if s not in used]
        fed = ", ".join(f"{s.stride}:{s.channels}" for s in used) or "none"
        lines.append(f"fed to the neck: {fed}" + (f"; not fed: strides {unused}" if unused else ""))
        if extra:
            lines.append("extra stride-2 stages appended to the backbone: " + ", ".join(f"{s.stride}:{s.channels}" for s in extra))
        kind = "FPN outputs" if self.convention.neck == "fpn" else "decoder inputs"
        lines.append(f"{kind} ({self.convention.levels}): strides {self.out_strides}")
        return lines


def build_pyramid(stages: Sequence[Stage], convention: Convention, out_indices: Sequence[int] | None = None) -> Pyramid:
    """Map a backbone's stages onto ``convention``'s levels (see the module docstring).

    ``out_indices`` overrides which backbone stages feed the neck; they must then be
    consecutive factor-2 strides, as every FPN / UPerNet level is.
    """
    stages = tuple(stages)
    if out_indices is None:
        chosen = [i for i, s in enumerate(stages) if convention.finest <= s.stride <= C5_STRIDE]
        if not chosen:  # every stage is finer than the task takes: extra stages start from the deepest
            chosen = [len(stages) - 1] if stages[-1].stride < convention.finest else []
        if not chosen:
            raise NasError(f"backbone strides {[s.stride for s in stages]}: no stage at or below stride {C5_STRIDE} to build {convention.levels} from")
    else:
        chosen = [int(i) for i in out_indices]
    strides = [stages[i].stride for i in chosen]
    for a, b in zip(strides, strides[1:]):
        if b != 2 * a:
            raise NasError(f"backbone stages {chosen} have strides {strides}: neck levels must double from one to the next")
    extra, stride, channels = [], strides[-1], stages[chosen[-1]].channels
    while stride < C5_STRIDE:
        stride, channels = stride * 2, channels * 2
        extra.append(channels)
    all_strides = strides + [strides[-1] * 2 ** (k + 1) for k in range(len(extra))]
    start = sum(1 for s in all_strides if s < convention.finest)
    if start == len(all_strides):
        raise NasError(f"backbone stages {chosen} (strides {strides}) are all finer than stride {convention.finest}, where {convention.levels} starts")
    return Pyramid(convention, stages, tuple(chosen), tuple(extra), start)
