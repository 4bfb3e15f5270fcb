"""Search spaces as data: layers with channels, strides and candidate ops.

:class:`SearchSpace` is the contract every registered space fulfils (the supernet, standalone
subnets, architecture strings, canonical forms, complexity). :class:`MBConvSpace` implements it
for MobileNet-style spaces described entirely by data: a stem, a list of :class:`LayerSpec`
whose candidates are :class:`OpSpec` (an op registry name plus its parameters), and a head.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nas_core.errors import ArchitectureError
from nas_core.spaces.ops import ACTIVATIONS, build_mbconv, build_skip, conv_bn
from nas_core.spaces.supernet import Arch, ChoiceBlock, Subnet, Supernet

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

OpBuilder = Callable[..., nn.Module]
DEFAULT_OPS: dict[str, OpBuilder] = {"mbconv": build_mbconv, "skip": build_skip}


@dataclass(frozen=True)
class OpSpec:
    """A candidate op: display ``name``, op registry name ``op`` and its parameters."""

    name: str
    op: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str, op: str, **params: Any) -> "OpSpec":
        return cls(name, op, tuple(sorted(params.items())))

    @property
    def is_skip(self) -> bool:
        return self.op == "skip"


@dataclass(frozen=True)
class LayerSpec:
    """A searchable layer: shape change and the candidates to choose from."""

    in_channels: int
    out_channels: int
    stride: int
    choices: tuple[OpSpec, ...]

    @property
    def shape_preserving(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels

    def is_free_identity(self, choice: int) -> bool:
        """A skip that computes exactly nothing (so its position inside a run does not matter)."""
        return self.choices[choice].is_skip and self.shape_preserving


@dataclass(frozen=True)
class FeatureInfo:
    """One multi-scale output for necks: after which layer, its channels and total stride."""

    layer: int
    channels: int
    stride: int


class SearchSpace:
    """The contract of a search space. Subclasses build modules; the rest is shared.

    Architectures are tuples of candidate indices; as strings they use one character per layer
    (``0-9`` then ``a-z``), which for NAS-Bench-Macro is exactly the benchmark's key.
    """

    # Set by subclasses: name (str), layers (tuple[LayerSpec, ...]), num_classes (int),
    # input_size ((H, W)) and stem_stride (total stride before the first searchable layer).
    name = "space"
    layers = ()
    num_classes = 10
    input_size = (32, 32)
    stem_stride = 1

    # ------------------------------------------------------------ modules (subclasses)

    def build_supernet(self) -> Supernet:
        raise NotImplementedError

    def build_subnet(self, arch: Arch) -> Subnet:
        """A freshly initialised standalone network for ``arch``."""
        arch = self.validate(arch)
        supernet = self.build_supernet()
        return supernet.extract(arch)

    def feature_info(self) -> list[FeatureInfo]:
        """Outputs at the end of each resolution (before the next stride-2 layer and at the end)."""
        infos, stride = [], self.stem_stride
        for i, layer in enumerate(self.layers):
            stride *= layer.stride
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if nxt is None or nxt.stride > 1:
                infos.append(FeatureInfo(i, layer.out_channels, stride))
        return infos

    # ------------------------------------------------------------ architectures

    @property
    def num_choices(self) -> list[int]:
        return [len(layer.choices) for layer in self.layers]

    @property
    def size(self) -> int:
        total = 1
        for n in self.num_choices:
            total *= n
        return total

    def encode(self, arch: Arch) -> str:
        return "".join(ALPHABET[c] for c in self.validate(arch))

    def decode(self, text: str) -> Arch:
        """Parse an architecture string; wrong length or alphabet is an :class:`ArchitectureError`."""
        text = str(text).strip()
        if len(text) != len(self.layers):
            raise ArchitectureError(
                f"architecture '{text}' has {len(text)} characters; space '{self.name}' has {len(self.layers)} searchable layers"
            )
        arch = []
        for i, (char, n) in enumerate(zip(text, self.num_choices)):
            index = ALPHABET.find(char.lower())
            if index < 0 or index >= n:
                raise ArchitectureError(
                    f"architecture '{text}': position {i} is '{char}', layer {i} of space '{self.name}' takes {ALPHABET[0]}-{ALPHABET[n - 1]}"
                )
            arch.append(index)
        return tuple(arch)

    def validate(self, arch: Sequence[int]) -> Arch:
        arch = tuple(int(c) for c in arch)
        if len(arch) != len(self.layers) or any(not 0 <= c < n for c, n in zip(arch, self.num_choices)):
            raise ArchitectureError(f"architecture {arch} does not fit space '{self.name}' (choices per layer: {self.num_choices})")
        return arch

    def parse(self, value: str | Sequence[int]) -> Arch:
        return self.decode(value) if isinstance(value, str) else self.validate(value)

    def canonical(self, arch: Arch) -> Arch:
        """Move free identities to the end of each run of shape-preserving layers.

        Two architectures with the same canonical form compute the same function family.
        """
        arch = list(self.validate(arch))
        i = 0
        while i < len(arch):
            if not self.layers[i].shape_preserving:
                i += 1
                continue
            j = i
            while j < len(arch) and self.layers[j].shape_preserving:
                j += 1
            run = list(range(i, j))
            ops = [arch[k] for k in run if not self.layers[k].is_free_identity(arch[k])]
            skips = [arch[k] for k in run if self.layers[k].is_free_identity(arch[k])]
            arch[i:j] = ops + skips
            i = j
        return tuple(arch)

    def num_identities(self, arch: Arch) -> int:
        return sum(layer.choices[c].is_skip for layer, c in zip(self.layers, arch))

    def sample(self, rng: random.Random) -> Arch:
        return tuple(rng.randrange(n) for n in self.num_choices)

    def describe(self, arch: Arch) -> list[str]:
        return [layer.choices[c].name for layer, c in zip(self.layers, arch)]

    # ------------------------------------------------------------ complexity

    def complexity(self, arch: Arch) -> tuple[int, int]:
        """(multiply-accumulates, parameters) of the standalone subnet, from a per-op table.

        The table is built once with torch's FLOP counter on meta tensors; conv and linear
        layers are counted, as in NAS-Bench-Macro's ``flops``.
        """
        arch = self.validate(arch)
        fixed_macs, fixed_params, table = self._complexity_table
        macs = fixed_macs + sum(table[i][c][0] for i, c in enumerate(arch))
        params = fixed_params + sum(table[i][c][1] for i, c in enumerate(arch))
        return macs, params

    def bounds(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((min MACs, max MACs), (min params, max params)) over the whole space."""
        fixed_macs, fixed_params, table = self._complexity_table
        macs = (fixed_macs + sum(min(m for m, _ in row) for row in table), fixed_macs + sum(max(m for m, _ in row) for row in table))
        params = (fixed_params + sum(min(p for _, p in row) for row in table), fixed_params + sum(max(p for _, p in row) for row in table))
        return macs, params

    @cached_property
    def _complexity_table(self) -> tuple[int, int, list[list[tuple[int, int]]]]:
        with torch.device("meta"):
            supernet = self.build_supernet()
            x = torch.empty(1, 3, *self.input_size)
        supernet.eval()
        table: list[list[tuple[int, int]]] = []
        fixed_macs, fixed_params = 0, 0
        with torch.no_grad():
            fixed_macs += count_macs(supernet.stem, x)
            fixed_params += count_params(supernet.stem)
            x = supernet.stem(x)
            for layer, choice_count in zip(supernet.layers, self.num_choices):
                row = []
                out = None
                for c in range(choice_count):
                    module = layer.extract(c)
                    row.append((count_macs(module, x), count_params(module)))
                    out = module(x)
                table.append(row)
                x = out
            for module in (supernet.head_features, supernet.classifier):
                fixed_macs += count_macs(module, x)
                fixed_params += count_params(module)
                x = module(x)
        return fixed_macs, fixed_params, table


def count_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass (torch's FLOP counter counts 2 FLOPs per MAC)."""
    with FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops() // 2


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------ MBConv spaces


@dataclass(frozen=True)
class FixedLayer:
    """A non-searchable layer of a stem or head: ``conv`` (conv+BN+act) or an op by name."""

    kind: str
    out_channels: int
    kernel: int = 1
    stride: int = 1
    act: str | None = "relu"
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(eq=False, kw_only=True)
class MBConvSpace(SearchSpace):
    """An MBConv-style space built from data: ``stem -> layers -> head -> pool -> classifier``."""

    name: str
    in_channels: int
    stem: tuple[FixedLayer, ...]
    layers: tuple[LayerSpec, ...]
    head: tuple[FixedLayer, ...]
    num_classes: int = 10
    input_size: tuple[int, int] = (32, 32)
    head_after_pool: tuple[FixedLayer, ...] = ()
    dropout: float = 0.0
    ops: Mapping[str, OpBuilder] = field(default_factory=lambda: dict(DEFAULT_OPS))

    @property
    def stem_stride(self) -> int:  # type: ignore[override]
        stride = 1
        for layer in self.stem:
            stride *= layer.stride
        return stride

    def _fixed(self, layers: Sequence[FixedLayer], channels: int) -> tuple[nn.Module, int]:
        modules: list[nn.Module] = []
        for spec in layers:
            if spec.kind == "conv":
                modules.append(conv_bn(channels, spec.out_channels, spec.kernel, spec.stride, act=spec.act))
            elif spec.kind == "conv_nobn":
                modules += [nn.Conv2d(channels, spec.out_channels, spec.kernel, spec.stride, spec.kernel // 2, bias=True)]
                if spec.act:
                    modules.append(ACTIVATIONS[spec.act]())
            else:
                modules.append(self.ops[spec.kind](channels, spec.out_channels, spec.stride, **dict(spec.params)))
            channels = spec.out_channels
        return nn.Sequential(*modules), channels

    def build_supernet(self) -> Supernet:
        stem, channels = self._fixed(self.stem, self.in_channels)
        blocks = []
        for spec in self.layers:
            candidates = [self.ops[op.op](spec.in_channels, spec.out_channels, spec.stride, **dict(op.params)) for op in spec.choices]
            blocks.append(ChoiceBlock(candidates))
        head, channels = self._fixed(self.head, self.layers[-1].out_channels)
        after, channels = self._fixed(self.head_after_pool, channels)
        head_features = nn.Sequential(head, nn.AdaptiveAvgPool2d(1), after, nn.Flatten(1))
        classifier = nn.Sequential(nn.Dropout(self.dropout), nn.Linear(channels, self.num_classes)) if self.dropout else nn.Linear(channels, self.num_classes)
        return Supernet(stem, blocks, head_features, classifier)
