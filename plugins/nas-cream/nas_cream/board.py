"""The prioritized path board: the K best paths seen so far, each with its own soft outputs.

An entry is a path (architecture), its top-1 accuracy (%) on the training batch it was measured
on, its MACs, a few of those input images and the softmax outputs THE PATH ITSELF produced on
them (the reference implementation stores the teacher's outputs there by mistake).

Admission after every step (once the warm-up is over), for a board of size K:

- the board is not full: admitted;
- ``acc > worst.acc + gap``: admitted (rule ``gap`` and ``gap-or-flops``);
- ``acc > worst.acc`` and ``flops < worst.flops``: admitted (rule ``gap-or-flops`` only).

A path that is already on the board (same canonical form) is not added twice: its entry is
replaced by the new measurement. The board stays sorted best first -- accuracy descending, then
fewer MACs, then the newer entry -- and is truncated to K.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

import torch

from nas_core.api import Arch

AdmissionRule = Literal["gap-or-flops", "gap"]


@dataclass
class BoardEntry:
    arch: Arch
    acc: float
    flops: int
    images: torch.Tensor
    """(k, C, H, W) normalised input images the path was measured on."""
    probs: torch.Tensor
    """(k, num_classes) the path's own softmax outputs on ``images``."""
    step: int = 0

    def sort_key(self) -> tuple[float, int, int]:
        return (-self.acc, self.flops, -self.step)

    def state_dict(self) -> dict[str, Any]:
        return {
            "arch": [int(c) for c in self.arch],
            "acc": float(self.acc),
            "flops": int(self.flops),
            "images": self.images.detach().cpu(),
            "probs": self.probs.detach().cpu(),
            "step": int(self.step),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device | str = "cpu") -> "BoardEntry":
        return cls(
            tuple(int(c) for c in state["arch"]), float(state["acc"]), int(state["flops"]),
            state["images"].to(device), state["probs"].to(device), int(state["step"]),
        )


def admits(entries: Sequence[BoardEntry], acc: float, flops: int, size: int, gap: float, rule: AdmissionRule) -> bool:
    """Whether a path with ``acc`` and ``flops`` enters a board holding ``entries`` (sorted)."""
    if len(entries) < size:
        return True
    worst = entries[-1]
    if acc > worst.acc + gap:
        return True
    return rule == "gap-or-flops" and acc > worst.acc and flops < worst.flops


class PathBoard:
    """A sorted, bounded list of :class:`BoardEntry`; ``key`` maps an arch to its identity."""

    def __init__(self, size: int = 10, gap: float = 5.0, rule: AdmissionRule = "gap-or-flops", key: Callable[[Arch], Arch] | None = None):
        self.size = size
        self.gap = gap
        self.rule = rule
        self.key = key or (lambda arch: tuple(arch))
        self.entries: list[BoardEntry] = []

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, index: int) -> BoardEntry:
        return self.entries[index]

    def offer(self, entry: BoardEntry) -> bool:
        """Apply the admission rule; returns whether the board changed."""
        same = [i for i, e in enumerate(self.entries) if self.key(e.arch) == self.key(entry.arch)]
        if same:
            self.entries[same[0]] = entry
        elif admits(self.entries, entry.acc, entry.flops, self.size, self.gap, self.rule):
            self.entries.append(entry)
        else:
            return False
        self.sort()
        del self.entries[self.size :]
        return True

    def sort(self) -> None:
        """Best first: accuracy descending, then fewer MACs, then the newer entry."""
        self.entries.sort(key=BoardEntry.sort_key)

    def images(self) -> torch.Tensor:
        """All entries' stored images, concatenated in board order: (K * k, C, H, W)."""
        return torch.cat([e.images for e in self.entries])

    def probs(self) -> torch.Tensor:
        """All entries' own outputs: (K, k, num_classes)."""
        return torch.stack([e.probs for e in self.entries])

    def state_dict(self) -> list[dict[str, Any]]:
        return [e.state_dict() for e in self.entries]

    def load_state_dict(self, state: list[dict[str, Any]], device: torch.device | str = "cpu") -> None:
        self.entries = [BoardEntry.from_state(s, device) for s in state]
