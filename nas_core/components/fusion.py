"""Built-in evaluator ``rank-fusion``: a weighted average of other evaluators' rank percentiles.

Scores of different evaluators live on different scales (accuracy in %, NASWOT a log-determinant,
a loss), so they are combined by rank: each member's score of a network becomes its percentile
among a fixed **reference sample** of distinct networks, and the fused score is the weighted
mean of those percentiles::

    evaluator:
      name: rank-fusion
      members:
        - {weight: 1, evaluator: {name: accuracy, bn_recal_batches: 4}}
        - {weight: 1, evaluator: {name: naswot}}        # plugins: {enable: [zero_cost]}

Why a reference sample and not the networks of the call: the evaluator contract says a score
depends on the network alone. Searchers call ``evaluate`` once per generation, scores are cached
per canonical network, and torchrun splits each batch over processes, so a percentile taken
within the call would change with the company a network keeps. The reference sample
(``reference_size`` distinct networks drawn uniformly over networks from the run's seed; the
whole space when it has fewer) is scored once per member and kept; every process draws and
scores the same one, without collectives.

Percentiles are mid-ranks in [0, 1] (below + half the ties, over the reference size). Networks
outside the reference's range -- often the very best ones a search is after -- would all tie
at 0 or 1, so each member adds a tiny robust z-score term, ``1e-6 * z / (1 + |z|)`` with
``z = (score - median) / (1.4826 MAD)`` of the reference scores: it is strictly increasing in
the score and smaller than any percentile step, so it only breaks ties. A member whose score is
NaN counts as the worst. A weight-0 member is built (so a typo fails at ``nas config check``)
but never scored. The fusion reads the supernet's trained weights (``reads_supernet``) iff a
member with a weight above 0 does: NASWOT + depth is training-free, and ``nas run`` then trains
no supernet.

Cost: once, ``reference_size`` evaluations per member (shared with the networks later asked
for, since every member's score is cached per canonical network); then one evaluation per
member per new network. The caches are dropped when a different supernet object is passed.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from pydantic import Field, model_validator

from nas_core.components.base import Evaluator
from nas_core.config import ComponentConfig, Section
from nas_core.context import ComponentContext
from nas_core.errors import ConfigError, NasError
from nas_core.ranking import sample_up_to
from nas_core.spaces.supernet import Arch, Supernet

REFERENCE_SALT = 17
"""Seed offset (from the run's seed) of the reference sample."""
TIE_BREAK = 1e-6
"""Weight of the bounded robust z-score term: two networks' tie terms differ by less than 2e-6,
below one percentile step of a member (its weight share / (2 * reference_size)) unless the
reference has ~250k networks or a member's share is under 1/1000."""
MAD_TO_SIGMA = 1.4826


class FusionMember(Section):
    weight: float = Field(..., ge=0, description="share of this member's percentile in the fused score (0: built, never scored)")
    evaluator: ComponentConfig = Field(..., description="any registered evaluator: {name: ..., <its options>}")


class RankFusionOptions(Section):
    members: list[FusionMember] = Field(..., min_length=1, description="the evaluators to fuse: [{weight: float >= 0, evaluator: {name: ..., <its options>}}, ...]")
    reference_size: int = Field(128, ge=2, description="distinct networks (seeded by the run's seed) that percentiles are taken against")

    @model_validator(mode="after")
    def _some_weight(self) -> "RankFusionOptions":
        if not any(m.weight > 0 for m in self.members):
            raise ValueError("at least one member needs a weight above 0")
        return self


class Reference:
    """One member's scores of the reference sample: percentile and robust z of any score."""

    def __init__(self, scores: Sequence[float]):
        self.sorted = np.sort(np.array([_finite_or_worst(s) for s in scores], dtype=np.float64))
        finite = self.sorted[np.isfinite(self.sorted)]
        self.median = float(np.median(finite)) if len(finite) else 0.0
        spread = MAD_TO_SIGMA * float(np.median(np.abs(finite - self.median))) if len(finite) else 0.0
        if spread <= 0 and len(finite) > 1:
            spread = float(np.std(finite))
        self.spread = spread if spread > 0 else 1.0

    def percentile(self, score: float) -> float:
        """Share of reference scores below ``score``, ties counted half, in [0, 1]."""
        s = _finite_or_worst(score)
        below = np.searchsorted(self.sorted, s, side="left")
        not_above = np.searchsorted(self.sorted, s, side="right")
        return float(below + not_above) / (2 * len(self.sorted))

    def squashed_z(self, score: float) -> float:
        """The robust z-score mapped strictly increasingly into (-1, 1) (-1 for the worst)."""
        s = _finite_or_worst(score)
        if math.isinf(s):
            return math.copysign(1.0, s)
        z = (s - self.median) / self.spread
        return z / (1.0 + abs(z))


def _finite_or_worst(score: float) -> float:
    score = float(score)
    return -math.inf if math.isnan(score) else score


class RankFusionEvaluator(Evaluator):
    """Weighted mean of the members' rank percentiles against a fixed reference sample."""

    metric_name = "rank_fusion"

    def __init__(self, context: ComponentContext, options: RankFusionOptions):
        self.context = context
        self.options = options
        self.weights = [m.weight for m in options.members]
        self.members: list[Evaluator] = [
            context.build("evaluator", m.evaluator, where=f"evaluator.members.{i}.evaluator") for i, m in enumerate(options.members)
        ]
        self.cache: list[dict[Arch, float]] = [{} for _ in self.members]
        """Each member's raw score per canonical network."""
        self._references: list[Reference | None] = [None for _ in self.members]
        self._reference_archs: list[Arch] | None = None
        self._supernet: Supernet | None = None

    # ------------------------------------------------------------------ the reference sample

    def reference_archs(self) -> list[Arch]:
        """The seeded reference sample (the whole space when it has fewer distinct networks)."""
        if self._reference_archs is None:
            self._reference_archs = sample_up_to(self.context.space, self.options.reference_size, self.context.seed + REFERENCE_SALT)
        return self._reference_archs

    def reference(self, index: int, supernet: Supernet) -> Reference:
        if self._references[index] is None:
            archs = self.reference_archs()
            self.context.logger.info("rank-fusion: member %d (%s) scores the reference sample of %d networks", index, self.members[index].metric_name, len(archs))
            self._references[index] = Reference(self.member_scores(index, supernet, archs))
        return self._references[index]

    # ------------------------------------------------------------------ scoring

    def member_scores(self, index: int, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        """Member ``index``'s raw scores of ``archs``, evaluated once per canonical network."""
        space, cache = self.context.space, self.cache[index]
        canon = [space.canonical(a) for a in archs]
        todo = sorted({a for a in canon if a not in cache})
        if todo:
            for arch, score in zip(todo, self.members[index].evaluate(supernet, todo), strict=True):
                cache[arch] = float(score)
        return [cache[a] for a in canon]

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        if supernet is not self._supernet:  # another supernet: cached scores belong to the old one
            self._supernet = supernet
            self.cache = [{} for _ in self.members]
            self._references = [None for _ in self.members]
        total = sum(self.weights)
        fused = np.zeros(len(archs), dtype=np.float64)
        for i, weight in enumerate(self.weights):
            if weight == 0:
                continue
            reference = self.reference(i, supernet)
            for j, score in enumerate(self.member_scores(i, supernet, archs)):
                fused[j] += weight / total * (reference.percentile(score) + TIE_BREAK * reference.squashed_z(score))
        return [float(f) for f in fused]

    # ------------------------------------------------------------------ the members' needs

    @property
    def reads_supernet(self) -> bool:
        """True iff a member that is scored (weight above 0) reads the trained weights."""
        return any(weight > 0 and member.reads_supernet for weight, member in zip(self.weights, self.members, strict=True))

    def recalibration_batches(self) -> list[torch.Tensor]:
        """The batches of the first scored member (weight above 0, config order) that
        recalibrates BN, so ``nas export`` gives the exported subnet the statistics its score was
        taken with; only when no scored member recalibrates, the first weight-0 member's that
        does (the subnet still gets statistics of its own, not the supernet's mixture)."""
        scored_first = sorted(range(len(self.members)), key=lambda i: self.weights[i] == 0)
        for i in scored_first:
            batches = self.members[i].recalibration_batches()
            if batches:
                return batches
        return []

    def requires(self) -> Mapping[str, Any]:
        """What the members require, together (two members requiring different values of one
        setting cannot be fused)."""
        needs: dict[str, Any] = {}
        owner: dict[str, int] = {}
        for i, member in enumerate(self.members):
            for key, value in member.requires().items():
                if key in needs and needs[key] != value:
                    raise ConfigError(
                        f"{self.context.config.source}: evaluator.members.{i}.evaluator: requires {key}={value!r}, "
                        f"but evaluator.members.{owner[key]}.evaluator requires {needs[key]!r}"
                    )
                needs[key], owner[key] = value, i
        return needs

    def check(self, context: ComponentContext) -> None:
        for i, member in enumerate(self.members):
            try:
                member.check(context)
            except ConfigError:
                raise
            except NasError as exc:  # say which member
                raise NasError(*(f"evaluator.members.{i}.evaluator: {m}" for m in exc.messages)) from None

    def state_dict(self) -> dict[str, Any]:
        return {"members": [member.state_dict() for member in self.members]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for member, member_state in zip(self.members, state.get("members", []), strict=False):
            member.load_state_dict(member_state)
