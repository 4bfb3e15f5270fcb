"""Cream's path sampler: one path per step, each layer's op drawn from a prior.

- ``uniform``: every op of a layer equally likely -- exactly the paths the built-in ``uniform``
  (SPOS) sampler draws with the same seed, so a Cream run and a SPOS run can be compared path
  for path.
- ``categorical``: the paper's per-layer prior over its 6 ops (k3e4, k3e6, k5e4, k5e6, k7e4, k7e6)
  = (0.05, 0.2, 0.05, 0.5, 0.05, 0.15), or ``probs`` given in the config for other spaces.
- ``board``: op frequencies of each layer among the paths on the prioritized board of the
  ``cream`` teacher, plus ``smoothing`` pseudo-counts so no op becomes unreachable; uniform
  while the board is empty.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import Field

from nas_core.api import Arch, ComponentContext, NasError, Sampler, Section, python_rng_state, set_python_rng_state

from nas_cream.settings import configured_teacher

PAPER_PRIOR = (0.05, 0.2, 0.05, 0.5, 0.05, 0.15)


class CreamSamplerOptions(Section):
    prior: Literal["uniform", "categorical", "board"] = "uniform"
    probs: list[float] | None = Field(None, description="categorical prior per op (default: the paper's 6-op prior)")
    smoothing: float = Field(1.0, gt=0, description="pseudo-count per op for the board-frequency prior")


class CreamSampler(Sampler):
    """Single path per step from a uniform, categorical or board-frequency prior."""

    paths_per_step = 1

    def __init__(self, context: ComponentContext, options: CreamSamplerOptions):
        self.context = context
        self.space = context.space
        self.prior = options.prior
        self.smoothing = options.smoothing
        self.rng = random.Random(context.seed * 7 + 1)  # the built-in uniform sampler's stream
        self.probs: list[float] | None = None
        if self.prior == "categorical":
            self.probs = list(options.probs) if options.probs is not None else list(PAPER_PRIOR)
            wrong = sorted({n for n in self.space.num_choices if n != len(self.probs)})
            if wrong:
                raise NasError(
                    f"sampler 'cream': the categorical prior has {len(self.probs)} probabilities but space "
                    f"'{self.space.name}' has layers with {', '.join(map(str, wrong))} choices (set sampler.probs)"
                )
            if any(p < 0 for p in self.probs) or sum(self.probs) <= 0:
                raise NasError("sampler 'cream': probs must be non-negative and not all zero")

    def check(self, context: ComponentContext) -> None:
        from nas_cream.teacher import CreamTeacher

        if self.prior == "board" and not isinstance(context.peer("teacher"), CreamTeacher):
            raise NasError(f"sampler 'cream' with prior 'board' needs teacher 'cream' (its board); the config's teacher is {configured_teacher(context)}")

    def layer_weights(self) -> list[list[float]]:
        """The sampling weights of every layer under the current prior."""
        n_choices = self.space.num_choices
        if self.prior == "categorical":
            return [list(self.probs) for _ in n_choices]  # type: ignore[arg-type]
        if self.prior == "board":
            board = self.context.peer("teacher").board
            if len(board):
                counts = [[self.smoothing] * n for n in n_choices]
                for entry in board:
                    for layer, choice in enumerate(entry.arch):
                        counts[layer][choice] += 1
                return counts
        return [[1.0] * n for n in n_choices]

    def sample(self, step: int) -> list[Arch]:
        if self.prior == "uniform":
            return [self.space.sample(self.rng)]
        return [tuple(self.rng.choices(range(len(w)), weights=w)[0] for w in self.layer_weights())]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": python_rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            set_python_rng_state(state["rng"], self.rng)
