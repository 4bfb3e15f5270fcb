"""Interfaces of the five extension points and the per-step context they receive.

A component is built by its registered factory as ``factory(context, options)``: ``context``
is the run's :class:`~nas_core.context.ComponentContext` and ``options`` the instance of the
options model the factory was registered with, validated from the config (defaults live in that
model and nowhere else). The engine calls the component directly.

Every component may keep state: ``state_dict()`` / ``load_state_dict()`` are saved in
checkpoints under the component's slot (``sampler``, ``teacher``, ``regularizers.0``, ...), so
resuming restores sampler permutations, teacher boards, queues and meta networks. Components
that own trainable modules (a projection neck; a meta network with its own optimiser is *not*
one of them) list them in ``trainable_modules()``; the engine adds their parameters to the
supernet's optimiser and moves them to the run's device.

Before anything runs (``nas config check`` too), the engine builds every component, attaches
the regularizers to the supernet and asks each component whether it can work in this run:
``requires()`` names config settings it cannot do without, ``check(context)`` looks at the
other components. Constructors must not read the data (``nas export`` never decodes it).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch
from torch import nn

from nas_core.context import ComponentContext
from nas_core.deprecation import NasPluginDeprecationWarning
from nas_core.spaces.supernet import Arch, Supernet

if TYPE_CHECKING:
    from nas_core.search_result import SearchProblem, SearchResult


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
    """Everything one optimiser step knows; components may stash values in ``extras``.

    ``batch`` is this process's whole batch of the step. With ``train.micro_batches`` > 1 the
    step is computed in slices: ``nas_extra_loss`` and ``Regularizer.path_loss`` then receive a
    context whose ``batch`` is the slice the output belongs to (``micro_batch`` is its index;
    ``extras`` is shared), while ``nas_before_train_step``, ``nas_after_train_step`` and the
    teacher see the step as a whole. ``lr`` is the learning rate this step's update uses.

    ``metrics`` are scalars a component wants logged with the step (``metrics.jsonl``,
    TensorBoard, the summary): name them ``<component>/<what>`` and write them on every step,
    so averages over a logging window are over the same steps. They are averaged over torchrun
    processes like the loss.
    """

    context: ComponentContext
    step: int
    epoch: int
    batch: Batch
    paths: list[Arch]
    supernet: Supernet
    extras: dict[str, Any] = field(default_factory=dict)
    lr: float = field(kw_only=True)
    micro_batch: int = field(default=0, kw_only=True)
    metrics: dict[str, float] = field(default_factory=dict, kw_only=True)
    _run: Any = field(default=None, kw_only=True, repr=False)

    @property
    def run(self) -> Any:
        """Deprecated (plugin API 1.1): use ``ctx.context`` (space, config, device, data, ...)."""
        warnings.warn(
            "StepContext.run is deprecated since plugin API 1.1 and goes away in plugin API 2; use ctx.context",
            NasPluginDeprecationWarning,
            stacklevel=2,
        )
        return self._run


class Component:
    """Base of every component: optional state, trainable modules and compatibility checks."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def trainable_modules(self) -> list[nn.Module]:
        return []

    def requires(self) -> Mapping[str, Any]:
        """Config settings this component cannot work without, ``{dotted.path: value}``, e.g.
        ``{"train.label_loss": "ce"}``. The engine checks them before anything runs and names
        both components when two of them require different values of one setting."""
        return {}

    def check(self, context: ComponentContext) -> None:
        """Raise :class:`~nas_core.errors.NasError` (one line naming this component and the
        other side) when this component cannot work with the rest of the run -- e.g. a
        regularizer whose targets only one teacher supplies. Called after every component was
        built and the regularizers attached, before any data is read."""


class Sampler(Component):
    """Chooses the paths of each optimiser step.

    One path: SPOS. Several paths: their gradients are accumulated into one update (FairNAS),
    or a regularizer couples them (Pi-NAS cross-path learning, the ranking loss).

    ``paths_per_step`` says how many paths ``sample`` returns every step (None: it varies).
    Budgets in path-images (one image through one path) and components that compare the
    paths of a step (``ranking-loss`` needs at least two) read it; a sampler that takes the
    number as an option calls that option ``paths_per_step``.
    """

    paths_per_step: int | None = None

    def sample(self, step: int) -> list[Arch]:
        raise NotImplementedError


class Regularizer(Component):
    """Changes the supernet or the loss.

    - ``attach(supernet)``: once, after the supernet is built (e.g. replace skip ops).
    - ``prepare_batch(batch)``: every step, before sampling (e.g. make multi-view inputs).
    - ``path_loss(ctx, index, output, loss)``: given path ``index``'s loss so far (the label
      loss, or None when training without labels), return the new loss.
    - ``step_loss(ctx, outputs, label_losses)``: only called when the class sets
      ``needs_step_loss = True``. After every path of the step has run forward, it sees all of
      them at once -- each path's output and label loss, graphs attached, in path order -- and
      returns one more loss term for the step (or None). A term that couples paths (a ranking
      hinge between them) lives here. Then the trainer keeps every path's graph and makes one
      backward of the sum of the paths' losses and the step terms; without such a regularizer
      it backpropagates each path as soon as its loss is known (less memory; the two are the
      same gradient up to float rounding). With ``train.micro_batches`` > 1 it is called once
      per slice with that slice's losses.
    - ``transform_export(subnet, arch)``: turn an extracted subnet into the plain network the
      user gets (e.g. fold a learnable skip into the next layer).

    A regularizer is listed at most once per run unless its class sets ``repeatable = True``.
    """

    repeatable: bool = False
    needs_step_loss: bool = False

    def attach(self, supernet: Supernet) -> None:
        pass

    def prepare_batch(self, batch: Batch) -> Batch:
        """Turn the loaded batch into what this method trains on (e.g. several augmented views)."""
        return batch

    def path_loss(self, ctx: StepContext, index: int, output: PathOutput, loss: torch.Tensor | None) -> torch.Tensor | None:
        return loss

    def step_loss(
        self, ctx: StepContext, outputs: Sequence[PathOutput], label_losses: Sequence[torch.Tensor | None]
    ) -> torch.Tensor | None:
        """One extra loss term for the step from all its paths (needs ``needs_step_loss = True``)."""
        return None

    def transform_export(self, subnet: nn.Module, arch: Arch) -> nn.Module:
        return subnet


class Teacher(Component):
    """Supplies targets computed outside the student's graph.

    ``prepare(ctx)`` runs before the paths' forward passes and stores what the regularizer
    needs in ``ctx.extras``; ``update(ctx, outputs)`` runs after the optimiser step with each
    path's detached output (EMA updates, board admission, meta-network updates). A teacher
    prepares targets for the whole batch, so it needs ``train.micro_batches: 1``.
    """

    def requires(self) -> Mapping[str, Any]:
        return {"train.micro_batches": 1}

    def prepare(self, ctx: StepContext) -> None:
        pass

    def update(self, ctx: StepContext, outputs: Sequence[PathOutput]) -> None:
        pass


class Evaluator(Component):
    """Scores architectures, usually with the trained supernet; higher is better.

    The contract a searcher, ``nas rank`` and ``nas export`` rely on:

    - ``evaluate(supernet, archs)`` is called once per *batch* of candidates (a generation of
      an evolutionary search, a random sample, the architectures ``nas rank`` draws), never
      necessarily with all of them; it returns one float per architecture, in order.
    - Scores are cached per canonical architecture (equivalent architectures, e.g. identities
      moved within a run of shape-preserving layers, are scored once) and under torchrun the
      batch is split across ranks and the scores all-gathered. So a score must depend on the
      architecture (and the supernet) alone -- never on which other architectures share the
      call, their order, or how many there are. Seed per architecture, not per call.
    - It must not change the supernet's weights. BN statistics may be re-estimated per
      architecture; restore them afterwards (:func:`nas_core.api.score_after_recalibration`
      does both).
    - ``recalibration_batches()`` are the normalised batches that re-estimate BN statistics
      for one path; ``nas export`` uses them so an exported subnet carries its own statistics.
      A wrapper evaluator (one that combines member evaluators) passes its members' batches
      through.
    - ``reads_supernet`` says whether the scores depend on the supernet's *trained* weights.
      True (the default, and the safe answer for an evaluator that does not say) for anything
      that scores paths of the supernet it is given: accuracy, a kNN or linear probe on its
      features, a proxy on inherited weights. False for an evaluator whose scores come from
      the architecture alone (``macs``, ``params``, ``depth``) or from weights it builds itself
      (a zero-cost proxy's seeded fresh initialisation); a wrapper answers True iff a member
      it scores does. When it is False, ``nas run`` trains no supernet, and ``nas search``,
      ``nas export`` and ``nas rank`` work on the freshly built supernet when the run has no
      checkpoint (the exported network then has initial weights, and says so).
    """

    metric_name: str = "score"
    reads_supernet: bool = True
    """Whether the scores depend on the supernet's trained weights (see above); a class
    attribute, or a property when an option decides."""

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        raise NotImplementedError

    def recalibration_batches(self) -> list[torch.Tensor]:
        """Normalised training batches that re-estimate BN statistics for one path. Empty: keep
        the supernet's statistics."""
        return []


class Searcher(Component):
    """Finds an architecture: ``search(problem) -> SearchResult``.

    ``problem.score_many(archs)`` evaluates a batch of candidates through the evaluator (cached
    per canonical architecture, split across ranks); ``problem.feasible(arch)`` checks the
    complexity constraints.
    """

    def search(self, problem: "SearchProblem") -> "SearchResult":
        raise NotImplementedError
