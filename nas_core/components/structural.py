"""Built-in structural evaluators: scores read off the architecture alone, no data, no weights.

``macs`` (multiply-accumulates of the standalone network), ``params`` (its parameters) and
``depth`` (its number of non-identity layers) are the cheap references every ranking study
compares a supernet against ("more capacity ranks higher"), and the priors a ranking
regularizer can order a step's paths by. Higher is more capacity. Each score is a pure
function of the canonical network (equivalent architectures score alike), so they are
deterministic and free to cache; the supernet is ignored (``reads_supernet`` is False).
"""

from __future__ import annotations

from typing import Sequence

from nas_core.components.base import Evaluator
from nas_core.config import Section
from nas_core.context import ComponentContext
from nas_core.spaces.supernet import Arch, Supernet


class StructuralOptions(Section):
    """The structural evaluators take no options."""


class StructuralEvaluator(Evaluator):
    """Base: ``measure(canonical arch) -> float``, cached per canonical architecture."""

    reads_supernet = False

    def __init__(self, context: ComponentContext, options: StructuralOptions):
        self.space = context.space
        self._cache: dict[Arch, float] = {}

    def measure(self, arch: Arch) -> float:
        raise NotImplementedError

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        scores = []
        for arch in archs:
            canonical = self.space.canonical(arch)
            if canonical not in self._cache:
                self._cache[canonical] = float(self.measure(canonical))
            scores.append(self._cache[canonical])
        return scores


class MacsEvaluator(StructuralEvaluator):
    """Multiply-accumulates of the standalone network (``space.complexity``); more is higher."""

    metric_name = "macs"

    def measure(self, arch: Arch) -> float:
        return self.space.complexity(arch)[0]


class ParamsEvaluator(StructuralEvaluator):
    """Parameters of the standalone network (``space.complexity``); more is higher."""

    metric_name = "params"

    def measure(self, arch: Arch) -> float:
        return self.space.complexity(arch)[1]


class DepthEvaluator(StructuralEvaluator):
    """Number of searchable layers that are not identity (skip) ops; deeper is higher."""

    metric_name = "depth"

    def measure(self, arch: Arch) -> float:
        return len(arch) - self.space.num_identities(arch)
