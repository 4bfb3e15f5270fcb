"""Built-in evaluator: top-1 accuracy of a path after BN recalibration.

Weight-sharing BN statistics belong to no single path, so each candidate first gets its own:
every BN layer's running statistics are reset and re-estimated as a cumulative average
(``momentum=None``) over ``bn_recal_batches`` training batches, in train mode without
gradients; then the path is evaluated in eval mode. The supernet's BN buffers are restored
afterwards, so evaluating never changes a checkpointed supernet.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from pydantic import Field
from torch import nn

from nas_core.components.base import Evaluator
from nas_core.config import Section
from nas_core.data.arrays import ImageArrays, Normalizer, seeded_subset
from nas_core.spaces.supernet import Arch, Supernet


class AccuracyOptions(Section):
    bn_recal_batches: int = Field(20, ge=0, description="training batches for BN recalibration (0: keep running stats)")
    batch_size: int = Field(256, gt=0)
    max_images: int | None = Field(None, gt=0, description="evaluate on a seeded stratified subset of the split")
    split: str = Field("val", pattern="^(val|test)$", description="val for search; test only for final reports")


def batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextmanager
def preserved_bn_state(module: nn.Module) -> Iterator[None]:
    """Restore BN buffers, momentum and the train/eval mode after the block."""
    bns = batchnorms(module)
    saved = [(bn.momentum, {k: v.clone() for k, v in bn.state_dict().items()}) for bn in bns]
    was_training = module.training
    try:
        yield
    finally:
        for bn, (momentum, state) in zip(bns, saved):
            bn.momentum = momentum
            bn.load_state_dict(state)
        module.train(was_training)


@torch.no_grad()
def recalibrate_bn(forward, module: nn.Module, batches: Sequence[torch.Tensor]) -> None:
    """Reset BN statistics and re-estimate them as a cumulative average over ``batches``."""
    bns = batchnorms(module)
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    module.train()
    for images in batches:
        forward(images)


@torch.no_grad()
def accuracy(forward, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = forward(images[start : start + batch_size])
        correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    return 100.0 * correct / max(1, len(images))


class AccuracyEvaluator(Evaluator):
    """Top-1 accuracy (%) on the validation split after BN recalibration."""

    metric_name = "val_acc"

    def __init__(self, run: Any, bn_recal_batches: int = 20, batch_size: int = 256, max_images: int | None = None, split: str = "val"):
        self.run = run
        self.bn_recal_batches = bn_recal_batches
        self.batch_size = batch_size
        self.max_images = max_images
        self.split = split
        self._cache: tuple[list[torch.Tensor], torch.Tensor, torch.Tensor] | None = None

    def _data(self) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Normalised recalibration batches and evaluation images, prepared once on the device."""
        if self._cache is None:
            run = self.run
            normalize = Normalizer(run.data.mean, run.data.std, run.device)
            split: ImageArrays = run.data.test if self.split == "test" else run.data.val
            if split is None or len(split) == 0:
                from nas_core.errors import DataError

                raise DataError(f"evaluator: the data set has no '{self.split}' split to evaluate on")
            if self.max_images:
                split = split.subset(seeded_subset(split.labels, self.max_images, run.config.seed + 11))
            generator = torch.Generator().manual_seed(run.config.seed + 13)
            order = torch.randperm(len(run.data.train), generator=generator)
            recal = [
                normalize(run.data.train.images[order[i * self.batch_size : (i + 1) * self.batch_size]].to(run.device))
                for i in range(min(self.bn_recal_batches, len(order) // self.batch_size))
            ]
            self._cache = (recal, normalize(split.images.to(run.device)), split.labels.to(run.device))
        return self._cache

    def recalibration_batches(self) -> list[torch.Tensor]:
        return self._data()[0]

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        recal, images, labels = self._data()
        scores = []
        with preserved_bn_state(supernet):
            for arch in archs:
                forward = lambda x, arch=arch: supernet(x, arch)  # noqa: E731
                if recal:
                    recalibrate_bn(forward, supernet, recal)
                supernet.eval()
                scores.append(accuracy(forward, images, labels, self.batch_size))
        return scores
