"""Path distillation: after the warm-up, the path loss becomes ``0.5 * [rho * KD + (2 - rho) * CE]``.

CE is the label loss the trainer computed (with its label smoothing); KD is the cross-entropy of
the student's log-softmax against the teacher path's softmax (temperature 1, no gradient through
the teacher); rho is the matching score of the chosen teacher entry. Both come from what the
``cream`` teacher put in ``ctx.extras["cream"]``; before the warm-up ends, or while the board is
empty, the loss is left as it is.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from nas_core.api import ComponentContext, NasError, PathOutput, Regularizer, Section, StepContext

from nas_cream.meta import soft_cross_entropy
from nas_cream.settings import configured_teacher


class CreamDistillOptions(Section):
    pass


def distill_loss(ce: torch.Tensor, kd: torch.Tensor, rho: float) -> torch.Tensor:
    return 0.5 * (rho * kd + (2.0 - rho) * ce)


class CreamDistill(Regularizer):
    """Distillation from the prioritized path the meta network picked, weighted by rho."""

    def __init__(self, context: ComponentContext, options: CreamDistillOptions):
        pass

    def requires(self) -> Mapping[str, Any]:
        return {"train.label_loss": "ce"}

    def check(self, context: ComponentContext) -> None:
        from nas_cream.teacher import CreamTeacher

        if not isinstance(context.peer("teacher"), CreamTeacher):
            raise NasError(f"regularizer 'cream' needs teacher 'cream' to supply its targets; the config's teacher is {configured_teacher(context)}")

    def path_loss(self, ctx: StepContext, index: int, output: PathOutput, loss: torch.Tensor | None) -> torch.Tensor | None:
        info = ctx.extras.get("cream")
        if not info or not info["active"] or loss is None:
            return loss
        kd = soft_cross_entropy(output.logits, info["teacher_probs"][index])
        return distill_loss(loss, kd, info["rho"][index])
