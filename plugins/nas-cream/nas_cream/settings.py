"""The ``cream:`` config section (plugin-wide settings shared by sampler, teacher, regularizer)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from nas_core.config import Section


class CreamSection(Section):
    """Warm-up: no board updates and no distillation before this point (paper: 20 of 120 epochs).

    ``warmup_steps`` wins over ``warmup_epochs``; with neither, the first sixth of training.
    """

    warmup_epochs: float | None = Field(None, ge=0, description="epochs of plain training before the board opens")
    warmup_steps: int | None = Field(None, ge=0, description="optimiser steps of plain training (overrides warmup_epochs)")


def steps_per_epoch(run: Any) -> int:
    """As the trainer counts them (full batches only)."""
    return max(1, len(run.data.train) // run.config.train.batch_size)


def total_steps(run: Any) -> int:
    cfg = run.config.train
    return cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch(run)))


def warmup_end(run: Any) -> int:
    """The first step at which the board and distillation are active."""
    section = run.config.section("cream") or CreamSection()
    if section.warmup_steps is not None:
        return int(section.warmup_steps)
    if section.warmup_epochs is not None:
        return int(round(section.warmup_epochs * steps_per_epoch(run)))
    return total_steps(run) // 6
