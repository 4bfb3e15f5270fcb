"""Path distillation: after the warm-up, the path loss becomes ``0.5 * [rho * KD + (2 - rho) * CE]``.

CE is the label loss the trainer computed (with its label smoothing); KD is the cross-entropy of
the student's log-softmax against the teacher path's softmax (temperature 1, no gradient through
the teacher); rho is the matching score of the chosen teacher entry. Both come from what the
``cream`` teacher put in ``ctx.extras["cream"]``; before the warm-up ends, or while the board is
empty, the loss is left as it is.
"""

from __future__ import annotations

from typing import Any

import torch

from nas_core.components.base import PathOutput, Regularizer, StepContext
from nas_core.config import Section
from nas_core.errors import NasError

from nas_cream.meta import soft_cross_entropy


class CreamDistillOptions(Section):
    pass


def distill_loss(ce: torch.Tensor, kd: torch.Tensor, rho: float) -> torch.Tensor:
    return 0.5 * (rho * kd + (2.0 - rho) * ce)


class CreamDistill(Regularizer):
    """Distillation from the prioritized path the meta network picked, weighted by rho."""

    def __init__(self, run: Any):
        teacher = run.config.teacher
        if teacher is None or teacher.name != "cream":
            raise NasError("regularizer 'cream': needs the cream teacher (teacher: {name: cream}) to supply targets")
        if run.config.train.label_loss != "ce":
            raise NasError("regularizer 'cream': needs the label loss (train.label_loss: ce)")

    def path_loss(self, ctx: StepContext, index: int, output: PathOutput, loss: torch.Tensor | None) -> torch.Tensor | None:
        info = ctx.extras.get("cream")
        if not info or not info["active"] or loss is None:
            return loss
        kd = soft_cross_entropy(output.logits, info["teacher_probs"][index])
        return distill_loss(loss, kd, info["rho"][index])
