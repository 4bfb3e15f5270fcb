"""Built-in path samplers: SPOS uniform single path and FairNAS strict fairness."""

from __future__ import annotations

import random
from typing import Any

from pydantic import Field

from nas_core.checkpoint import python_rng_state, set_python_rng_state
from nas_core.components.base import Sampler
from nas_core.config import Section
from nas_core.context import ComponentContext
from nas_core.spaces.supernet import Arch


class UniformOptions(Section):
    pass


class UniformSampler(Sampler):
    """SPOS: one path per step, each layer's choice drawn uniformly and independently."""

    def __init__(self, context: ComponentContext, options: UniformOptions):
        self.space = context.space
        self.rng = random.Random(context.seed * 7 + 1)

    def sample(self, step: int) -> list[Arch]:
        return [self.space.sample(self.rng)]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": python_rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_python_rng_state(state["rng"], self.rng)


class FairOptions(Section):
    paths_per_step: int | None = Field(None, gt=0, description="m; default: the largest number of choices of a layer")


class FairSampler(Sampler):
    """FairNAS strict fairness: m paths per step, gradients accumulated into one update.

    Each layer deals its choices from a shuffled deck, a fresh random permutation whenever the
    deck runs out. With m equal to a layer's number of choices every step uses each choice of that
    layer exactly once; in general, whenever a layer has dealt a multiple of its choice count,
    every choice has been used exactly equally often (skip included, when it is a choice).
    """

    def __init__(self, context: ComponentContext, options: FairOptions):
        self.space = context.space
        self.m = options.paths_per_step or max(self.space.num_choices)
        self.rng = random.Random(context.seed * 7 + 2)
        self.decks: list[list[int]] = [[] for _ in self.space.num_choices]
        self.counts: list[list[int]] = [[0] * n for n in self.space.num_choices]

    def _deal(self, layer: int) -> int:
        if not self.decks[layer]:
            deck = list(range(self.space.num_choices[layer]))
            self.rng.shuffle(deck)
            self.decks[layer] = deck
        choice = self.decks[layer].pop()
        self.counts[layer][choice] += 1
        return choice

    def sample(self, step: int) -> list[Arch]:
        columns = [[self._deal(layer) for _ in range(self.m)] for layer in range(len(self.decks))]
        return [tuple(col[i] for col in columns) for i in range(self.m)]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": python_rng_state(self.rng), "decks": [list(d) for d in self.decks], "counts": [list(c) for c in self.counts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_python_rng_state(state["rng"], self.rng)
        self.decks = [list(map(int, d)) for d in state["decks"]]
        self.counts = [list(map(int, c)) for c in state["counts"]]
