"""The ``zero_cost`` plugin: one evaluator per proxy, usable by any searcher.

An evaluator scores each architecture on a standalone copy of its path, so it never changes
the supernet. ``weights: init`` (default) scores a freshly initialised copy of the space --
training-free, how the proxies are meant to be used, and identical for every architecture
(one seeded initialisation of the whole space, so architectures are compared on the same
weights); ``weights: supernet`` scores the trained supernet's inherited weights instead.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch
from pydantic import Field

from nas_core.api import Arch, ComponentContext, Evaluator, Normalizer, Registry, Section, Supernet, hookimpl
from nas_zero_cost.proxies import grad_norm, naswot, snip, synflow

NAS_PLUGIN_API = "1.1"


class ZeroCostOptions(Section):
    weights: Literal["init", "supernet"] = Field("init", description="init: a seeded fresh initialisation (training-free); supernet: inherited weights")
    batch_size: int = Field(64, gt=1, description="training images in the scoring batch (synflow uses only their shape)")
    seed: int = Field(0, description="seed of the initialisation and of the batch choice")


class ZeroCostEvaluator(Evaluator):
    """Base: scores ``proxy(network copy, images, labels)`` for each architecture."""

    proxy: Callable[..., float]

    def __init__(self, context: ComponentContext, options: ZeroCostOptions):
        self.context = context
        self.weights = options.weights
        self.batch_size = options.batch_size
        self.seed = options.seed
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._init: Supernet | None = None

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One seeded batch of normalised training images and labels, on the run's device."""
        if self._batch is None:
            data, device = self.context.data, self.context.device
            order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(self.seed))[: self.batch_size]
            images = Normalizer(data.mean, data.std, device)(data.train.images[order].to(device))
            self._batch = (images, data.train.labels[order].to(device))
        return self._batch

    def source(self, supernet: Supernet) -> Supernet:
        """The supernet whose paths are scored: the given one, or one seeded fresh initialisation."""
        if self.weights == "supernet":
            return supernet
        if self._init is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self._init = self.context.space.build_supernet().to(self.context.device)
        return self._init

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        images, labels = self.batch()
        source = self.source(supernet)
        scores = []
        for arch in archs:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                scores.append(type(self).proxy(source.extract(arch), images, labels))
        return scores


class SynflowEvaluator(ZeroCostEvaluator):
    """Synflow: log sum(theta * dR/dtheta) with |theta| weights and an all-ones input (data-free)."""

    metric_name = "synflow"
    proxy = staticmethod(synflow)


class GradNormEvaluator(ZeroCostEvaluator):
    """Grad-norm: sum of per-parameter gradient L2 norms of the loss on one batch."""

    metric_name = "grad_norm"
    proxy = staticmethod(grad_norm)


class SnipEvaluator(ZeroCostEvaluator):
    """SNIP: sum of |theta * dL/dtheta| on one batch."""

    metric_name = "snip"
    proxy = staticmethod(snip)


class NaswotEvaluator(ZeroCostEvaluator):
    """NASWOT: log|det| of the activation-pattern agreement kernel of one batch."""

    metric_name = "naswot"
    proxy = staticmethod(naswot)


EVALUATORS = {"synflow": SynflowEvaluator, "grad-norm": GradNormEvaluator, "snip": SnipEvaluator, "naswot": NaswotEvaluator}


@hookimpl
def nas_register_evaluators(registry: Registry) -> None:
    for name, factory in EVALUATORS.items():
        registry.register(name, factory, options=ZeroCostOptions)
