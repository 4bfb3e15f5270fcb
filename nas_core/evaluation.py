"""Scoring paths of a trained supernet: BN recalibration and the data it runs on.

Weight-sharing BN statistics belong to no single path, so a path is scored after its own: every
BN layer's running statistics are reset and re-estimated as a cumulative average
(``momentum=None``) over a few training batches, in train mode without gradients; then the path
is evaluated in eval mode. The supernet's BN buffers are restored afterwards, so scoring never
changes a checkpointed supernet.

One implementation for every evaluator (the built-in accuracy evaluator, Pi-NAS's kNN and
linear-probe evaluators, third-party ones): :func:`evaluation_data` prepares the recalibration
batches and the evaluation images from the run's data with fixed seeds, and
:func:`score_after_recalibration` scores architectures one by one after recalibrating each.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from nas_core.context import ComponentContext
from nas_core.data.arrays import ImageArrays, Normalizer, seeded_subset
from nas_core.errors import DataError
from nas_core.spaces.supernet import Arch, Supernet

EVAL_SUBSET_SALT = 11
"""Seed offset (from the run's seed) of the stratified evaluation subset (``max_images``)."""
RECAL_ORDER_SALT = 13
"""Seed offset of the permutation of training images the recalibration batches are cut from."""


def batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``module``."""
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
def recalibrate_bn(forward: Callable[[torch.Tensor], object], module: nn.Module, batches: Sequence[torch.Tensor]) -> None:
    """Reset BN statistics and re-estimate them as a cumulative average over ``batches``
    (``forward(images)`` runs the path, in train mode, without gradients)."""
    for bn in batchnorms(module):
        bn.reset_running_stats()
        bn.momentum = None
    module.train()
    for images in batches:
        forward(images)


def score_after_recalibration(
    supernet: Supernet,
    archs: Sequence[Arch],
    batches: Sequence[torch.Tensor],
    score: Callable[[Arch], float],
    *,
    through: str = "logits",
) -> list[float]:
    """For each architecture: recalibrate BN on ``batches`` through its path (``through``:
    ``logits`` runs the whole path, ``features`` stops before the classifier), switch to eval
    mode and call ``score(arch)``. BN buffers and mode are restored afterwards. With no
    batches the supernet's own statistics are used."""
    scores = []
    with preserved_bn_state(supernet):
        for arch in archs:
            if batches:
                if through == "features":
                    recalibrate_bn(lambda x, arch=arch: supernet.forward_features(x, arch), supernet, batches)
                else:
                    recalibrate_bn(lambda x, arch=arch: supernet(x, arch), supernet, batches)
            supernet.eval()
            scores.append(score(arch))
    return scores


@torch.no_grad()
def accuracy(forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    """Top-1 accuracy (%) of ``forward`` (images -> logits) in batches of ``batch_size``."""
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = forward(images[start : start + batch_size])
        correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    return 100.0 * correct / max(1, len(images))


@dataclass
class EvaluationData:
    """What an evaluator scores with, normalised and on the run's device."""

    recalibration: list[torch.Tensor]
    """Training batches for BN recalibration (the same for every architecture)."""
    images: torch.Tensor
    """The evaluation split's images (or its stratified subset)."""
    labels: torch.Tensor
    normalize: Normalizer
    """The data set's normalisation on the run's device (for more images an evaluator needs)."""


def evaluation_data(context: ComponentContext, *, split: str = "val", bn_recal_batches: int = 20, batch_size: int = 256, max_images: int | None = None) -> EvaluationData:
    """Recalibration batches and evaluation images from the run's data, with fixed seeds.

    ``split`` is ``val`` (held out of training, for search) or ``test`` (final reports only);
    ``max_images`` takes a stratified subset of it (seed: run seed + 11). The recalibration
    batches are the first ``bn_recal_batches`` batches of ``batch_size`` images of a seeded
    permutation of the training split (seed: run seed + 13), so every evaluator built with the
    same settings recalibrates on the same images.
    """
    data, device, seed = context.data, context.device, context.seed
    normalize = Normalizer(data.mean, data.std, device)
    chosen: ImageArrays | None = data.test if split == "test" else data.val
    if chosen is None or len(chosen) == 0:
        raise DataError(f"evaluator: the data set has no '{split}' split to evaluate on")
    if max_images:
        chosen = chosen.subset(seeded_subset(chosen.labels, max_images, seed + EVAL_SUBSET_SALT))
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed + RECAL_ORDER_SALT))
    recal = [
        normalize(data.train.images[order[i * batch_size : (i + 1) * batch_size]].to(device))
        for i in range(min(bn_recal_batches, len(order) // batch_size))
    ]
    return EvaluationData(recal, normalize(chosen.images.to(device)), chosen.labels.to(device), normalize)
