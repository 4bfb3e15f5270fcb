"""Built-in evaluator: top-1 accuracy (or negative loss) of a path after BN recalibration.

Each candidate first gets its own BN statistics (:mod:`nas_core.evaluation`: reset, then a
cumulative average over ``bn_recal_batches`` training batches), then the path is evaluated on
the held-out split; the supernet's BN buffers are restored afterwards.

``metric: loss`` scores the negative mean cross-entropy instead of accuracy (higher is still
better): a continuous score that also orders networks whose accuracies tie on a small split.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from pydantic import Field

from nas_core.components.base import Evaluator
from nas_core.config import Section
from nas_core.context import ComponentContext
from nas_core.errors import NasError
from nas_core.evaluation import EvaluationData, accuracy, evaluation_data, mean_cross_entropy, score_after_recalibration
from nas_core.spaces.supernet import Arch, Supernet


class AccuracyOptions(Section):
    bn_recal_batches: int = Field(20, ge=0, description="training batches for BN recalibration (0: keep running stats)")
    batch_size: int = Field(256, gt=0, description="images per forward pass (recalibration and evaluation)")
    max_images: int | None = Field(None, gt=0, description="evaluate on a seeded stratified subset of the split")
    split: str = Field("val", pattern="^(val|test)$", description="val for search; test only for final reports")
    metric: Literal["accuracy", "loss"] = Field("accuracy", description="accuracy: top-1 (%); loss: negative mean cross-entropy (higher is better)")


class AccuracyEvaluator(Evaluator):
    """Top-1 accuracy (%), or negative mean cross-entropy, on the validation split after BN
    recalibration."""

    metric_name = "val_acc"

    def __init__(self, context: ComponentContext, options: AccuracyOptions):
        self.context = context
        self.options = options
        self.metric_name = {"accuracy": "val_acc", "loss": "neg_val_loss"}[options.metric]
        self._data: EvaluationData | None = None

    def check(self, context: ComponentContext) -> None:
        if context.config.train.label_loss == "none":
            raise NasError(
                f"evaluator 'accuracy' scores paths with the supernet's classifier, which train.label_loss: none never trains; "
                "use an evaluator that needs no trained classifier (e.g. knn or linear-probe of the pinas plugin, or a zero-cost proxy)"
            )

    def data(self) -> EvaluationData:
        """Recalibration batches and evaluation images, prepared once on the device."""
        if self._data is None:
            o = self.options
            self._data = evaluation_data(self.context, split=o.split, bn_recal_batches=o.bn_recal_batches, batch_size=o.batch_size, max_images=o.max_images)
        return self._data

    def recalibration_batches(self) -> list[torch.Tensor]:
        return self.data().recalibration

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        d, batch_size = self.data(), self.options.batch_size
        if self.options.metric == "loss":
            def score(arch: Arch) -> float:
                return -mean_cross_entropy(lambda x: supernet(x, arch), d.images, d.labels, batch_size)
        else:
            def score(arch: Arch) -> float:
                return accuracy(lambda x: supernet(x, arch), d.images, d.labels, batch_size)
        return score_after_recalibration(supernet, archs, d.recalibration, score)
