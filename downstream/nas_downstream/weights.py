"""Backbone weights from files a user hands in: an exported subnet or a supernet checkpoint.

Both are read with ``torch.load(weights_only=True)`` (:func:`nas_core.api.load_checkpoint`):
a file that holds anything but tensors and plain containers -- for instance a pickle that
would run code -- is refused with one :class:`~nas_core.api.CheckpointError` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas_core.api import CHECKPOINT_FORMAT, SUBNET_FORMAT, CheckpointError, inherit_state_dict, load_checkpoint

KINDS = {SUBNET_FORMAT: "subnet", CHECKPOINT_FORMAT: "supernet"}


@dataclass
class WeightsFile:
    """A weights file read safely: which kind it is, its space and (for subnets) architecture."""

    path: Path
    kind: str  # "subnet" or "supernet"
    space: str
    space_options: dict[str, Any]
    arch: str | None
    state: dict[str, Any]

    @classmethod
    def read(cls, path: str | Path, expect: str) -> "WeightsFile":
        path = Path(path).expanduser()
        if path.is_dir() and expect == "subnet":
            path = path / "subnet.pt"  # an export folder
        state = load_checkpoint(path)
        kind = KINDS.get(state.get("format"))
        if kind != expect:
            wanted = {v: k for k, v in KINDS.items()}[expect]
            raise CheckpointError(f"{path}: not {'an exported subnet' if expect == 'subnet' else 'a supernet checkpoint'} (format {state.get('format')!r}, expected {wanted!r})")
        if not isinstance(state.get("space"), str) or not isinstance(state.get("space_options", {}), dict):
            raise CheckpointError(f"{path}: has no search space name")
        return cls(path, kind, state["space"], dict(state.get("space_options") or {}), state.get("arch"), state)

    def backbone_state(self, net: nn.Module, arch: tuple[int, ...], arch_text: str) -> dict[str, torch.Tensor]:
        """The entries of ``net``'s state dict (a possibly truncated Subnet) taken from this file."""
        wanted = net.state_dict()
        if self.kind == "subnet":
            if self.arch != arch_text:
                raise CheckpointError(f"{self.path}: exported architecture is {self.arch}, the backbone asks for {arch_text}")
            source = self.state.get("state_dict")
            if not isinstance(source, dict):
                raise CheckpointError(f"{self.path}: exported subnet has no state_dict")
            missing = [k for k in wanted if k not in source]
            if missing:
                raise CheckpointError(f"{self.path}: exported subnet lacks {len(missing)} backbone weights (first: {missing[0]})")
            state = {k: source[k] for k in wanted}
        else:
            source = self.state.get("supernet")
            if not isinstance(source, dict):
                raise CheckpointError(f"{self.path}: supernet checkpoint has no 'supernet' weights")
            try:
                state = inherit_state_dict(source, net, arch)
            except KeyError as exc:
                raise CheckpointError(f"{self.path}: supernet has no weight {exc.args[0]!r} for architecture {arch_text}") from None
        for key, value in state.items():
            if tuple(value.shape) != tuple(wanted[key].shape):
                raise CheckpointError(f"{self.path}: weight {key} has shape {tuple(value.shape)}, the backbone needs {tuple(wanted[key].shape)} (same space options?)")
        return state
