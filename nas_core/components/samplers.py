"""Built-in path samplers: SPOS uniform single path, FairNAS strict fairness, sandwich."""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import Field

from nas_core.checkpoint import python_rng_state, set_python_rng_state
from nas_core.components.base import Sampler
from nas_core.config import Section
from nas_core.context import ComponentContext
from nas_core.spaces.supernet import Arch


class UniformOptions(Section):
    paths_per_step: int = Field(1, gt=0, description="independent uniform paths per step (gradients accumulate); 1 is SPOS")


class UniformSampler(Sampler):
    """SPOS: each layer's choice drawn uniformly and independently; one path per step by
    default, or ``paths_per_step`` independent ones whose gradients accumulate into one update."""

    def __init__(self, context: ComponentContext, options: UniformOptions):
        self.space = context.space
        self.paths_per_step = options.paths_per_step
        self.rng = random.Random(context.seed * 7 + 1)

    def sample(self, step: int) -> list[Arch]:
        return [self.space.sample(self.rng) for _ in range(self.paths_per_step)]

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
        self.m = self.paths_per_step = options.paths_per_step or max(self.space.num_choices)
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


class SandwichOptions(Section):
    random_paths: int = Field(2, ge=0, description="uniformly random paths per step besides the largest and the smallest")
    cost: Literal["macs", "params"] = Field("macs", description="what makes a path large: its MACs or its parameters")


class SandwichSampler(Sampler):
    """The sandwich rule: every step trains the largest path, the smallest path and
    ``random_paths`` uniformly random ones (in that order), gradients accumulated into one update.

    Largest and smallest are by the space's cost per layer (``cost``, MACs by default; the
    other measure breaks ties, then the lower choice index): on NAS-Bench-Macro the largest is
    MB6_K5 everywhere and the smallest is the identity everywhere. Training both bounds every
    step keeps the extremes of the space trained as well as the middle, which the ranking of
    networks of very different size needs.
    """

    def __init__(self, context: ComponentContext, options: SandwichOptions):
        self.space = context.space
        self.random_paths = options.random_paths
        self.paths_per_step = 2 + options.random_paths
        self.rng = random.Random(context.seed * 7 + 3)
        costs = choice_costs(self.space, options.cost)
        self.largest: Arch = tuple(max(range(len(row)), key=lambda c: (row[c], -c)) for row in costs)
        self.smallest: Arch = tuple(min(range(len(row)), key=lambda c: (row[c], c)) for row in costs)

    def sample(self, step: int) -> list[Arch]:
        return [self.largest, self.smallest, *(self.space.sample(self.rng) for _ in range(self.random_paths))]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": python_rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_python_rng_state(state["rng"], self.rng)


def choice_costs(space: Any, cost: str) -> list[list[tuple[int, int]]]:
    """Per layer, per choice: (cost, other measure) that choice adds to a network.

    The space's complexity is a sum over layers, so a choice's share is the difference it makes
    to any one architecture (all-zeros here)."""
    base = tuple(0 for _ in space.num_choices)
    base_macs, base_params = space.complexity(base)
    table = []
    for layer, count in enumerate(space.num_choices):
        row = []
        for choice in range(count):
            arch = base[:layer] + (choice,) + base[layer + 1 :]
            macs, params = space.complexity(arch)
            macs, params = macs - base_macs, params - base_params
            row.append((macs, params) if cost == "macs" else (params, macs))
        table.append(row)
    return table
