"""The training schedule: how many steps, which epoch a step is in, the learning rate at a step.

Computed in ONE place from the config and the number of training images, and used both by the
trainer (its ``LambdaLR`` multiplies the base learning rate by :meth:`Schedule.factor`) and by
components that need to know where training stands (a warm-up measured in epochs, a virtual
step taken with the supernet's current learning rate), so nobody recounts steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas_core.config import TrainConfig


@dataclass(frozen=True)
class Schedule:
    """Steps and learning rates of one training run.

    ``steps_per_epoch`` counts full batches only (the last partial batch of an epoch is
    dropped); ``total_steps`` is ``train.max_steps`` or ``ceil(epochs * steps_per_epoch)``.
    The learning rate rises linearly over ``warmup_steps``, then follows the cosine / linear
    decay to ``min_lr`` (or stays constant).
    """

    steps_per_epoch: int
    total_steps: int
    base_lr: float
    name: str = "cosine"
    warmup_steps: int = 0
    min_lr: float = 0.0

    @classmethod
    def of(cls, train: TrainConfig, train_images: int) -> "Schedule":
        """The schedule ``train`` gives on a training split of ``train_images`` images."""
        steps_per_epoch = max(1, train_images // train.batch_size)
        total = train.max_steps or max(1, math.ceil(train.epochs * steps_per_epoch))
        sched = train.scheduler
        return cls(steps_per_epoch, total, train.optimizer.lr, sched.name, sched.warmup_steps, sched.min_lr)

    def factor(self, step: int) -> float:
        """The learning rate at ``step`` relative to the base rate (what ``LambdaLR`` multiplies by)."""
        floor = self.min_lr / self.base_lr
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, progress)
        if self.name == "cosine":
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        if self.name == "linear":
            return floor + (1 - floor) * (1 - progress)
        return 1.0

    def lr_at(self, step: int) -> float:
        """The learning rate the optimiser step number ``step`` (0-based) uses."""
        return self.base_lr * self.factor(step)

    def epoch_of(self, step: int) -> int:
        """The (0-based) epoch that step number ``step`` belongs to."""
        return step // self.steps_per_epoch

    def steps_in(self, epochs: float) -> int:
        """How many steps ``epochs`` epochs are (rounded to the nearest step)."""
        return int(round(epochs * self.steps_per_epoch))
