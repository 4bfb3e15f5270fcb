"""Weight-sharing supernet and the standalone subnets extracted from it.

The structure is the same for every space: a fixed ``stem``, a list of searchable
:class:`ChoiceBlock` layers, fixed ``head_features`` (ending in a pooled feature vector) and a
``classifier``. An architecture is a tuple of candidate indices, one per searchable layer.
A :class:`Subnet` holds the chosen candidates under the same names minus ``candidates.<c>``,
so inherited weights map one to one.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

Arch = tuple[int, ...]


class ChoiceBlock(nn.Module):
    """One searchable layer: runs the candidate the architecture picks."""

    def __init__(self, candidates: Sequence[nn.Module]):
        super().__init__()
        self.candidates = nn.ModuleList(candidates)

    def forward(self, x: torch.Tensor, choice: int) -> torch.Tensor:
        return self.candidates[choice](x)

    def extract(self, choice: int) -> nn.Module:
        """The standalone module for ``choice`` (spaces with shared parts override this)."""
        return self.candidates[choice]


class Supernet(nn.Module):
    """All candidates of all layers; ``forward(x, arch)`` runs one path."""

    def __init__(self, stem: nn.Module, layers: Sequence[ChoiceBlock], head_features: nn.Module, classifier: nn.Module):
        super().__init__()
        self.stem = stem
        self.layers = nn.ModuleList(layers)
        self.head_features = head_features
        self.classifier = classifier

    def forward_features(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        x = self.stem(x)
        for layer, choice in zip(self.layers, arch, strict=True):
            x = layer(x, choice)
        return self.head_features(x)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        return self.classifier(self.forward_features(x, arch))

    def path_modules(self, arch: Arch) -> list[nn.Module]:
        """Modules a path uses: stem, chosen candidates, head and classifier."""
        chosen = [layer.extract(choice) for layer, choice in zip(self.layers, arch, strict=True)]
        return [self.stem, *chosen, self.head_features, self.classifier]

    def path_parameters(self, arch: Arch) -> list[nn.Parameter]:
        seen: dict[int, nn.Parameter] = {}
        for module in self.path_modules(arch):
            for p in module.parameters():
                seen.setdefault(id(p), p)
        return list(seen.values())

    def path(self, arch: Arch) -> "Subnet":
        """The path as a plain network that SHARES the supernet's modules (nothing is copied, so
        it costs nothing to build): it runs exactly what :meth:`extract` would, and whatever it
        changes -- weights, BN statistics, modes -- changes in the supernet too."""
        stem, *chosen, head_features, classifier = self.path_modules(arch)
        return Subnet(stem, chosen, head_features, classifier)

    def extract(self, arch: Arch) -> "Subnet":
        """A standalone copy of the path with its inherited weights (and BN statistics)."""
        return copy.deepcopy(self.path(arch))


class Subnet(nn.Module):
    """One architecture as a plain network: ``stem -> layers -> head_features -> classifier``."""

    def __init__(self, stem: nn.Module, layers: Sequence[nn.Module], head_features: nn.Module, classifier: nn.Module):
        super().__init__()
        self.stem = stem
        self.layers = nn.ModuleList(layers)
        self.head_features = head_features
        self.classifier = classifier

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.head_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))

    def feature_maps(self, x: torch.Tensor, layer_indices: Sequence[int]) -> list[torch.Tensor]:
        """Outputs after the given searchable layers (for detection / segmentation necks)."""
        wanted = set(layer_indices)
        outs = []
        x = self.stem(x)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in wanted:
                outs.append(x)
        return outs


def supernet_key_for_subnet(key: str, arch: Arch) -> str:
    """Map a :class:`Subnet` state-dict key to the supernet key holding the inherited weight."""
    parts = key.split(".")
    if parts[0] == "layers":
        layer = int(parts[1])
        return ".".join(["layers", parts[1], "candidates", str(arch[layer]), *parts[2:]])
    return key


def inherit_state_dict(supernet_state: dict[str, torch.Tensor], subnet: nn.Module, arch: Arch) -> dict[str, torch.Tensor]:
    """The subnet's state dict taken from a supernet state dict (for checkpoints on disk)."""
    state = {}
    for key in subnet.state_dict():
        source = supernet_key_for_subnet(key, arch)
        if source not in supernet_state:
            raise KeyError(source)
        state[key] = supernet_state[source]
    return state
