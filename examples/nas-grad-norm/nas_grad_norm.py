"""An example nas-core plugin in one file: the ``grad-norm`` evaluator.

Grad-norm (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021) scores a
network by the sum over its parameters of the L2 norm of the cross-entropy gradient on one
batch: how strongly the loss pulls on the weights at initialisation. Higher is better.

It shows everything a third-party evaluator needs, and nothing else:

- an options model (``Section``: unknown keys and wrong types are config errors) whose defaults
  live in the model only;
- a component built as ``factory(context, options)`` that reads the run's data only when it
  first scores (``nas export`` and ``nas config check`` never decode data);
- the evaluator contract: one float per architecture, higher is better, depending on the
  architecture alone (the batch and the initialisation come from the run's seed, never from
  the call), the supernet left untouched (each architecture is scored on a standalone copy of
  its path), and ``reads_supernet`` saying whether the scores depend on the trained weights;
- registration through ``nas_register_evaluators`` and the entry point in ``pyproject.toml``.

Enable it with ``plugins: {enable: [grad_norm]}`` and ``evaluator: {name: grad-norm}``; it can
also be a member of the built-in ``rank-fusion`` evaluator. Maintained proxies (NASWOT,
synflow, Zen-score) are in ``plugins/nas-zero-cost``.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field

from nas_core.api import Arch, ComponentContext, Evaluator, Normalizer, Registry, Section, Supernet, hookimpl

NAS_PLUGIN_API = "1.1"


class GradNormOptions(Section):
    batch_size: int = Field(32, gt=1, description="training images in the scoring batch")
    weights: Literal["init", "supernet"] = Field("init", description="init: a seeded fresh initialisation; supernet: the trained weights")


class GradNormEvaluator(Evaluator):
    """Sum over parameters of ||dL/dtheta||_2 for the cross-entropy of one seeded batch."""

    metric_name = "grad_norm"

    def __init__(self, context: ComponentContext, options: GradNormOptions):
        self.context = context
        self.options = options
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._init: Supernet | None = None

    @property
    def reads_supernet(self) -> bool:
        """Whether the scores depend on the trained supernet: only with ``weights: supernet``
        (``nas run`` trains no supernet for a training-free evaluator)."""
        return self.options.weights == "supernet"

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch of normalised training images, chosen with the run's seed (read once)."""
        if self._batch is None:
            data, device = self.context.data, self.context.device
            generator = torch.Generator().manual_seed(self.context.seed)
            order = torch.randperm(len(data.train), generator=generator)[: self.options.batch_size]
            images = Normalizer(data.mean, data.std, device)(data.train.images[order].to(device))
            self._batch = (images, data.train.labels[order].to(device))
        return self._batch

    def weights_of(self, supernet: Supernet) -> Supernet:
        if self.options.weights == "supernet":
            return supernet
        if self._init is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.context.seed)
                self._init = self.context.space.build_supernet().to(self.context.device)
        return self._init

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        images, labels = self.batch()
        source = self.weights_of(supernet)
        return [grad_norm(source.extract(arch), images, labels) for arch in archs]


def grad_norm(network: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Sum over parameters of the L2 norm of the cross-entropy gradient (train-mode BN)."""
    network.train()
    network.zero_grad(set_to_none=True)
    F.cross_entropy(network(images), labels).backward()
    return float(sum(p.grad.norm() for p in network.parameters() if p.grad is not None))


@hookimpl
def nas_register_evaluators(registry: Registry) -> None:
    registry.register("grad-norm", GradNormEvaluator, options=GradNormOptions)
