"""``NASBackbone``: any architecture of any registered search space as a multi-scale backbone.

The network is the space's standalone subnet (``space.build_subnet(arch)``) cut after the
deepest requested feature; outputs are the ends of the space's resolution stages
(``space.feature_info()``), picked by ``out_indices``, followed by the outputs of
``extra_stages``: stride-2 stages (3x3 conv + BN + ReLU, the given output channels each)
appended after the deepest output, which give a backbone that ends early (a CIFAR space at
stride 8) the coarser levels a detection or segmentation neck expects
(:mod:`nas_downstream.pyramid`). They are randomly initialised whatever weights the searched
part gets. ``out_channels`` and ``strides`` say what a neck receives, so configs can be written
from them (see :func:`backbone_features`).

Weights (loaded by ``init_weights``, as mmdet backbones do with pretrained weights):
``supernet=`` a supernet checkpoint of this engine (weights inherited for ``arch``),
``subnet=`` an exported ``subnet.pt`` (or its folder), or neither (random init).
Both files are read with ``weights_only=True``. Space, options and architecture come from the
config or, when left out, from the file; if both give them they must agree.

BN handling like mmdet's ResNet: ``frozen_stages`` (-1 none, 0 the stem, k the stem and the
first k stages: eval mode, no gradients), ``norm_eval`` (every BN in eval mode while training),
``norm_cfg=dict(type="SyncBN")`` (BN layers become ``SyncBatchNorm``: synchronised under
distributed training, plain BN in a single process) and ``requires_grad`` in ``norm_cfg``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nas_core.api import NasError, build_space, validated_space_options
from nas_downstream.weights import WeightsFile

NORM_TYPES = ("BN", "BN2d", "SyncBN")


@dataclass(frozen=True)
class BackboneFeatures:
    """What a neck needs to know: per output, the layer it follows, its channels and stride."""

    layers: tuple[int, ...]
    channels: tuple[int, ...]
    strides: tuple[int, ...]


def backbone_features(space_name: str, space_options: dict | None = None, out_indices: Sequence[int] | None = None) -> BackboneFeatures:
    """Channels and strides of the outputs ``out_indices`` (default: every stage) of a space."""
    infos = build_space(space_name, space_options).feature_info()
    indices = _check_out_indices(out_indices, len(infos), space_name)
    return BackboneFeatures(tuple(infos[i].layer for i in indices), tuple(infos[i].channels for i in indices), tuple(infos[i].stride for i in indices))


def _check_out_indices(out_indices: Sequence[int] | None, count: int, space_name: str) -> tuple[int, ...]:
    if out_indices is None:
        return tuple(range(count))
    indices = tuple(int(i) for i in out_indices)
    if not indices or any(not 0 <= i < count for i in indices) or list(indices) != sorted(set(indices)):
        raise NasError(f"out_indices {tuple(out_indices)}: space '{space_name}' has {count} feature stages; give increasing indices in 0..{count - 1}")
    return indices


def _downsampling_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """An extra stride-2 stage: 3x3 conv + BN + ReLU (ResNet's stem conv, as a stage)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class NASBackbone(BaseModule):
    """A searched architecture as an mmdet / mmseg backbone (see the module docstring)."""

    def __init__(
        self,
        space: str | None = None,
        arch: str | Sequence[int] | None = None,
        space_options: dict[str, Any] | None = None,
        supernet: str | None = None,
        subnet: str | None = None,
        out_indices: Sequence[int] | None = None,
        extra_stages: Sequence[int] = (),
        frozen_stages: int = -1,
        norm_eval: bool = False,
        norm_cfg: dict[str, Any] | None = None,
        init_cfg: dict | list | None = None,
    ):
        super().__init__(init_cfg=init_cfg)
        if supernet and subnet:
            raise NasError("NASBackbone: give either supernet= (inherit weights) or subnet= (exported weights), not both")
        self.weights_path = supernet or subnet
        self.weights_kind = "supernet" if supernet else "subnet" if subnet else None
        header = None
        if self.weights_path and (space is None or arch is None):
            header = WeightsFile.read(self.weights_path, self.weights_kind)
            space = space or header.space
            space_options = header.space_options if space_options is None else space_options
            if arch is None and header.arch is not None:
                arch = header.arch
        if space is None or arch is None:
            raise NasError("NASBackbone: needs space= and arch= (or an exported subnet= that names them)")
        self.space_name = space
        self.space_options = validated_space_options(space, space_options)
        self._header = header
        space_obj = build_space(space, self.space_options)
        self.arch = space_obj.parse(arch)
        self.arch_text = space_obj.encode(self.arch)

        infos = space_obj.feature_info()
        self.out_indices = _check_out_indices(out_indices, len(infos), space)
        self.stage_ends = tuple(info.layer for info in infos)
        self.feature_layers = tuple(infos[i].layer for i in self.out_indices)
        self.extra_stages = tuple(int(c) for c in extra_stages)
        if any(c <= 0 for c in self.extra_stages):
            raise NasError(f"NASBackbone extra_stages {tuple(extra_stages)}: give the positive output channels of each stride-2 stage")
        deepest = infos[self.out_indices[-1]]
        self.out_channels = tuple(infos[i].channels for i in self.out_indices) + self.extra_stages
        self.strides = tuple(infos[i].stride for i in self.out_indices) + tuple(deepest.stride * 2 ** (k + 1) for k in range(len(self.extra_stages)))
        if not -1 <= frozen_stages <= len(infos):
            raise NasError(f"frozen_stages={frozen_stages}: space '{space}' has {len(infos)} stages (use -1..{len(infos)})")
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        norm_cfg = dict(norm_cfg or {"type": "BN", "requires_grad": True})
        if norm_cfg.get("type", "BN") not in NORM_TYPES or set(norm_cfg) - {"type", "requires_grad"}:
            raise NasError(f"NASBackbone norm_cfg {norm_cfg}: supported are type in {NORM_TYPES} and requires_grad")
        self.norm_cfg = norm_cfg

        # The standalone subnet, cut after the deepest requested feature (no unused parameters,
        # which distributed training would reject); head and classifier are dropped.
        body = space_obj.build_subnet(self.arch)
        body.layers = nn.ModuleList(list(body.layers)[: max(self.feature_layers) + 1])
        body.head_features = nn.Identity()
        body.classifier = nn.Identity()
        extra = nn.ModuleList(_downsampling_stage(cin, cout) for cin, cout in zip((deepest.channels, *self.extra_stages), self.extra_stages))
        if norm_cfg.get("type") == "SyncBN":
            body = nn.SyncBatchNorm.convert_sync_batchnorm(body)
            extra = nn.SyncBatchNorm.convert_sync_batchnorm(extra)
        self.body = body
        self.extra = extra
        if not norm_cfg.get("requires_grad", True):
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    for p in module.parameters():
                        p.requires_grad_(False)
        self._freeze_stages()

    # ------------------------------------------------------------------ weights

    def init_weights(self) -> None:
        """Load the configured weights (supernet or exported subnet); else mmengine's init."""
        if self.weights_path is None:
            if self.init_cfg:
                super().init_weights()
            self._is_init = True  # the subnet's own initialisation otherwise
            return
        self.load_weights()
        self._is_init = True

    def load_weights(self) -> None:
        header = self._header or WeightsFile.read(self.weights_path, self.weights_kind)
        if header.space != self.space_name:
            raise NasError(f"{header.path}: weights are for space '{header.space}', the backbone is '{self.space_name}'")
        if validated_space_options(header.space, header.space_options) != self.space_options:
            raise NasError(f"{header.path}: weights are for space options {header.space_options}, the backbone has {self.space_options}")
        state = header.backbone_state(self.body, self.arch, self.arch_text)
        self.body.load_state_dict(state, strict=True)
        self._header = None  # do not keep a whole supernet in memory

    # ------------------------------------------------------------------ forward / modes

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.body.feature_maps(x, self.feature_layers)
        for stage in self.extra:
            features.append(stage(features[-1]))
        return tuple(features)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        modules: list[nn.Module] = [self.body.stem]
        if self.frozen_stages > 0:
            modules += list(self.body.layers)[: self.stage_ends[self.frozen_stages - 1] + 1]
        return modules

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> "NASBackbone":
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
