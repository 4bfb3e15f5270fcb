"""What a latency table measures: every op a network of the space can run, with its real input.

The plan comes from the space contract alone (:class:`~nas_core.spaces.space.SearchSpace`):
``build_supernet()`` gives ``stem``, searchable ``layers`` (:class:`ChoiceBlock`, whose
``extract(c)`` is the standalone module of choice ``c``), ``head_features`` and ``classifier``.
So any space -- built in, from a plugin, or third-party -- gets a latency table without code of
its own. The op of layer ``i`` is measured on the input shape it sees in a network (the output
of layer ``i - 1``, which every candidate of a layer produces alike); the head is measured as
``head_features`` followed by the classifier.

The plan's ``fingerprint`` hashes every slot's module description and input shape, so a table
is refused for a space whose structure differs from the one it was measured on even if the
space keeps its name (another width, input size, plugin version), while options that do not
change the network (dropout, seeds) do not invalidate it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import torch
from torch import nn

from nas_core.spaces.space import SearchSpace
from nas_core.spaces.supernet import Supernet

STEM, HEAD = "stem", "head"


@dataclass(frozen=True)
class Slot:
    """One measured op: the stem, the head, or candidate ``choice`` of searchable ``layer``."""

    kind: str  # "stem", "layer" or "head"
    layer: int = -1
    choice: int = -1
    name: str = ""
    input_shape: tuple[int, ...] = ()
    free: bool = False
    """A skip that computes nothing (no-op in the network); counted out of per-layer overhead."""

    @property
    def label(self) -> str:
        return self.kind if self.kind != "layer" else f"layer {self.layer} {self.name}"


@dataclass(frozen=True)
class Plan:
    """Slots grouped for measurement: ``[stem]``, the candidates of each layer, ``[head]``."""

    groups: tuple[tuple[Slot, ...], ...]
    fingerprint: str

    @property
    def slots(self) -> list[Slot]:
        return [slot for group in self.groups for slot in group]


class HeadModule(nn.Module):
    """``head_features`` then ``classifier``: the fixed end of every network, measured as one op."""

    def __init__(self, head_features: nn.Module, classifier: nn.Module):
        super().__init__()
        self.head_features = head_features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head_features(x))


def op_module(supernet: Supernet, slot: Slot) -> nn.Module:
    """The module a slot measures, taken from a (real) supernet."""
    if slot.kind == STEM:
        return supernet.stem
    if slot.kind == HEAD:
        return HeadModule(supernet.head_features, supernet.classifier)
    return supernet.layers[slot.layer].extract(slot.choice)


@lru_cache(maxsize=8)
def make_plan(space: SearchSpace, batch_size: int) -> Plan:
    """The slots of ``space`` with input shapes, computed on the meta device (no weights in memory).

    Cached per space object (spaces are immutable descriptions), as search and export both ask."""
    with torch.device("meta"):
        supernet = space.build_supernet()
        x = torch.empty(batch_size, 3, *space.input_size)
    supernet.eval()
    descriptions: list[str] = []
    groups: list[tuple[Slot, ...]] = []

    def describe(slot: Slot, module: nn.Module) -> None:
        descriptions.append(f"{slot.kind}:{slot.layer}:{slot.choice}:{tuple(slot.input_shape)[1:]}:{_structure(module)}")

    with torch.no_grad():
        stem = Slot(STEM, name="stem", input_shape=tuple(x.shape))
        describe(stem, supernet.stem)
        groups.append((stem,))
        x = supernet.stem(x)
        for i, (block, spec) in enumerate(zip(supernet.layers, space.layers, strict=True)):
            slots, out = [], None
            for c in range(space.num_choices[i]):
                name = spec.choices[c].name
                free = spec.is_free_identity(c)
                slot = Slot("layer", i, c, name, tuple(x.shape), free)
                module = block.extract(c)
                describe(slot, module)
                slots.append(slot)
                out = module(x)
            groups.append(tuple(slots))
            x = out
        head = Slot(HEAD, name="head", input_shape=tuple(x.shape))
        describe(head, HeadModule(supernet.head_features, supernet.classifier))
        groups.append((head,))
    fingerprint = hashlib.sha256("\n".join(descriptions).encode()).hexdigest()[:16]
    return Plan(tuple(groups), fingerprint)


def _structure(module: nn.Module) -> str:
    """The module's description without what inference ignores (dropout rates, inplace flags)."""
    text = repr(module)
    text = re.sub(r"Dropout\(p=[^)]*\)", "Dropout", text)
    return re.sub(r"inplace=(True|False)", "", text)


def input_shape(space: SearchSpace, batch_size: int) -> tuple[int, ...]:
    return (batch_size, 3, *space.input_size)


def layer_count(arch: Sequence[int], plan: Plan) -> int:
    """Searchable layers of ``arch`` that run an op (free skips excluded)."""
    return sum(not plan.groups[1 + i][c].free for i, c in enumerate(arch))
