"""Interfaces of the five extension points and the per-step context they receive.

A component is built by its registered factory as ``factory(run, **options)`` and called by the
engine directly. Every component may keep state: ``state_dict()`` / ``load_state_dict()`` are
saved in checkpoints under the component's slot (``sampler``, ``teacher``, ``regularizers.0``,
...), so resuming restores sampler permutations, teacher boards, queues and meta networks.
Components that own trainable modules (a projection neck, a meta network with its own
optimiser is *not* one of them) list them in ``trainable_modules()``; the engine adds their
parameters to the supernet's optimiser and moves them to the run's device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import nn

from nas_core.spaces.supernet import Arch, Supernet

if TYPE_CHECKING:
    from nas_core.run import Run


@dataclass
class Batch:
    """A training batch. ``inputs`` is one tensor, or a list of views for multi-view methods.

    With views, path ``i`` of a step reads view ``2i`` as the student input and view ``2i + 1``
    as the teacher input (modulo the number of views). ``labels`` is None for unlabelled data.
    """

    inputs: torch.Tensor | list[torch.Tensor]
    labels: torch.Tensor | None = None
    raw: torch.Tensor | None = None
    """The uint8 images before normalisation (after the data set's own crop/flip, if any)."""

    @property
    def size(self) -> int:
        first = self.inputs[0] if isinstance(self.inputs, list) else self.inputs
        return int(first.shape[0])

    def student_input(self, index: int) -> torch.Tensor:
        if isinstance(self.inputs, list):
            return self.inputs[(2 * index) % len(self.inputs)]
        return self.inputs

    def teacher_input(self, index: int) -> torch.Tensor:
        if isinstance(self.inputs, list):
            return self.inputs[(2 * index + 1) % len(self.inputs)]
        return self.inputs


@dataclass
class PathOutput:
    """What the supernet produced for one path: pooled features and logits."""

    features: torch.Tensor
    logits: torch.Tensor


@dataclass
class StepContext:
    """Everything one optimiser step knows; components may stash values in ``extras``."""

    run: "Run"
    step: int
    epoch: int
    batch: Batch
    paths: list[Arch]
    supernet: Supernet
    extras: dict[str, Any] = field(default_factory=dict)


class Component:
    """Base of every component: optional state and trainable modules."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def trainable_modules(self) -> list[nn.Module]:
        return []


class Sampler(Component):
    """Chooses the paths of each optimiser step.

    One path: SPOS. Several paths: their gradients are accumulated into one update (FairNAS),
    or a regularizer couples them (Pi-NAS cross-path learning).
    """

    def sample(self, step: int) -> list[Arch]:
        raise NotImplementedError


class Regularizer(Component):
    """Changes the supernet or the loss.

    - ``attach(supernet)``: once, after the supernet is built (e.g. replace skip ops).
    - ``prepare_batch(batch)``: every step, before sampling (e.g. make multi-view inputs).
    - ``path_loss(ctx, index, output, loss)``: given path ``index``'s loss so far (the label
      loss, or None when training without labels), return the new loss.
    - ``transform_export(subnet, arch)``: turn an extracted subnet into the plain network the
      user gets (e.g. fold a learnable skip into the next layer).
    """

    def attach(self, supernet: Supernet) -> None:
        pass

    def prepare_batch(self, batch: Batch) -> Batch:
        """Turn the loaded batch into what this method trains on (e.g. several augmented views)."""
        return batch

    def path_loss(self, ctx: StepContext, index: int, output: PathOutput, loss: torch.Tensor | None) -> torch.Tensor | None:
        return loss

    def transform_export(self, subnet: nn.Module, arch: Arch) -> nn.Module:
        return subnet


class Teacher(Component):
    """Supplies targets computed outside the student's graph.

    ``prepare(ctx)`` runs before the paths' forward passes and stores what the regularizer
    needs in ``ctx.extras``; ``update(ctx, outputs)`` runs after the optimiser step with each
    path's detached output (EMA updates, board admission, meta-network updates).
    """

    def prepare(self, ctx: StepContext) -> None:
        pass

    def update(self, ctx: StepContext, outputs: Sequence[PathOutput]) -> None:
        pass


class Evaluator(Component):
    """Scores architectures with the trained supernet (higher is better), e.g. accuracy after
    BN recalibration. ``evaluate`` may be called many times; it must not change the supernet's
    weights (BN statistics may change and are restored by the caller when it matters)."""

    metric_name: str = "score"

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        raise NotImplementedError

    def recalibration_batches(self) -> list[torch.Tensor]:
        """Normalised training batches that re-estimate BN statistics for one path; ``nas export``
        uses them so the exported subnet carries its own statistics. Empty: keep the supernet's."""
        return []


class Searcher(Component):
    """Finds an architecture: ``search(problem) -> SearchResult``."""

    def search(self, problem: "SearchProblem") -> "SearchResult":  # noqa: F821
        raise NotImplementedError
