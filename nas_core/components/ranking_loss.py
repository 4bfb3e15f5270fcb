"""Built-in regularizer ``ranking-loss``: a prior-guided pairwise ranking hinge between the
paths of a step.

A supernet trained path by path learns each path's loss but nothing about their ORDER, and
ranking networks is what the search needs. The winners of the CVPR 2022 one-shot NAS challenge
added a pairwise ranking loss guided by a cheap prior (FLOPs, a zero-cost proxy): when the prior
says path i is better than path j, the supernet is penalised if i's loss is not lower than j's,

    hinge = mean over pairs (i, j) with prior_i > prior_j of  max(0, margin - (loss_j - loss_i)),

with the paths' label losses on the same batch. The weight ramps in linearly from 0 after
``warmup_fraction`` of training to ``weight`` at ``ramp_end_fraction`` -- early on the supernet
has no ranking worth correcting, and the prior only has to nudge it.

The prior is any registered evaluator (``macs``, ``depth``, ``naswot`` from the zero-cost
plugin, ...), built from the ``prior`` spec exactly as the run's own evaluator; its scores are
cached per canonical architecture and saved in checkpoints (a resumed run never re-scores).
Pairs the prior ties on (equal depth, equivalent architectures) are skipped.

Logged every step: ``ranking_loss/hinge`` (the unweighted hinge), ``ranking_loss/violated``
(the fraction of pairs whose better-prior path has the higher loss) and ``ranking_loss/weight``.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import torch
from pydantic import Field, model_validator

from nas_core.components.base import PathOutput, Regularizer, StepContext
from nas_core.config import ComponentConfig, Section
from nas_core.context import ComponentContext
from nas_core.errors import NasError
from nas_core.spaces.supernet import Arch

METRICS = ("ranking_loss/hinge", "ranking_loss/violated", "ranking_loss/weight")


class RankingLossOptions(Section):
    prior: ComponentConfig = Field(
        default_factory=lambda: ComponentConfig(name="macs"),
        description="the evaluator that orders a step's paths ({name: ..., options}); higher is better",
    )
    weight: float = Field(1.0, ge=0, description="weight of the hinge once ramped in")
    margin: float = Field(0.0, ge=0, description="loss gap the better-prior path should keep below the other")
    warmup_fraction: float = Field(0.2, ge=0, le=1, description="fraction of training before the weight starts to rise from 0")
    ramp_end_fraction: float = Field(0.5, ge=0, le=1, description="fraction of training at which the weight reaches `weight`")

    @model_validator(mode="after")
    def _ramp_in_order(self) -> "RankingLossOptions":
        if self.ramp_end_fraction < self.warmup_fraction:
            raise ValueError(f"ramp_end_fraction ({self.ramp_end_fraction}) must not be below warmup_fraction ({self.warmup_fraction})")
        return self


class RankingLoss(Regularizer):
    """Prior-guided pairwise ranking hinge between the step's paths.

    For every pair the prior orders (prior_i > prior_j), max(0, margin - (loss_j - loss_i)) on
    the two paths' label losses, averaged over the pairs; the weight rises linearly from 0 at
    ``warmup_fraction`` of training to ``weight`` at ``ramp_end_fraction``. Needs a sampler
    with two or more paths per step (e.g. ``sandwich``). Logs ``ranking_loss/hinge``,
    ``ranking_loss/violated`` and ``ranking_loss/weight``.
    """

    needs_step_loss = True

    def __init__(self, context: ComponentContext, options: RankingLossOptions):
        self.context = context
        self.options = options
        listed = [i for i, c in enumerate(context.config.regularizers) if c.name.split(":")[-1] == "ranking-loss"]
        where = f"regularizers.{listed[0]}.prior" if listed else "prior"
        self.prior = context.build("evaluator", options.prior, where=where)
        self.prior_spec = json.dumps({"name": options.prior.name, **options.prior.raw_options()}, sort_keys=True, default=str)
        self.scores: dict[Arch, float] = {}

    # -------------------------------------------------------------- compatibility

    def requires(self) -> Mapping[str, Any]:
        return {"train.label_loss": "ce"}

    def check(self, context: ComponentContext) -> None:
        sampler = context.peer("sampler")
        paths = getattr(sampler, "paths_per_step", None)
        if paths is not None and paths < 2:
            raise NasError(
                f"regularizer 'ranking-loss' compares the paths of a step, but sampler '{context.config.sampler.name}' "
                f"trains {paths} path per step; use sampler: {{name: sandwich}} (or a sampler.paths_per_step of 2 or more)"
            )

    # -------------------------------------------------------------- the loss

    def weight_at(self, step: int) -> float:
        """The hinge's weight at optimiser step ``step``: 0 until ``warmup_fraction`` of the
        run's total steps, then linear up to ``weight`` at ``ramp_end_fraction``."""
        o = self.options
        progress = step / self.context.schedule.total_steps
        if progress < o.warmup_fraction:
            return 0.0
        if progress >= o.ramp_end_fraction:
            return o.weight
        return o.weight * (progress - o.warmup_fraction) / (o.ramp_end_fraction - o.warmup_fraction)

    def prior_scores(self, archs: Sequence[Arch]) -> list[float]:
        """The prior's score of each architecture, computed once per canonical network.

        The prior runs outside the training's random streams (forked), so a resumed run, whose
        cache comes from the checkpoint, draws the same random numbers as one that never stopped."""
        space = self.context.space
        canonical = [space.canonical(a) for a in archs]
        todo = sorted({a for a in canonical if a not in self.scores})
        if todo:
            devices = [self.context.device] if self.context.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                fresh = self.prior.evaluate(self.context.supernet, todo)
            self.scores.update({a: float(s) for a, s in zip(todo, fresh)})
        return [self.scores[a] for a in canonical]

    def step_loss(
        self, ctx: StepContext, outputs: Sequence[PathOutput], label_losses: Sequence[torch.Tensor | None]
    ) -> torch.Tensor | None:
        prior = self.prior_scores(ctx.paths)
        pairs = [(i, j) for i in range(len(prior)) for j in range(len(prior)) if prior[i] > prior[j]]
        weight = self.weight_at(ctx.step)
        hinge = None
        violated = 0.0
        if pairs:
            if any(loss is None for loss in label_losses):
                raise NasError("regularizer 'ranking-loss' needs each path's label loss (train.label_loss: ce)")
            better = torch.stack([label_losses[i] for i, _ in pairs])
            worse = torch.stack([label_losses[j] for _, j in pairs])
            hinge = torch.relu(self.options.margin - (worse - better)).mean()
            violated = float((better.detach() > worse.detach()).float().mean())
        slices = self.context.config.train.micro_batches
        for name, value in zip(METRICS, (0.0 if hinge is None else float(hinge.detach()), violated, weight)):
            ctx.metrics[name] = ctx.metrics.get(name, 0.0) + value / slices
        if hinge is None or weight == 0.0:
            return None
        return weight * hinge

    # -------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        space = self.context.space
        return {"prior": self.prior_spec, "scores": {space.encode(a): s for a, s in sorted(self.scores.items())}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("prior") != self.prior_spec:
            return  # another prior (or other options of it) scored these: recompute rather than mix
        space = self.context.space
        self.scores = {space.decode(text): float(s) for text, s in state.get("scores", {}).items()}
