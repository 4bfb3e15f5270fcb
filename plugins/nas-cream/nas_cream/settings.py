"""The ``cream:`` config section (plugin-wide settings shared by sampler, teacher, regularizer)."""

from __future__ import annotations

from pydantic import Field

from nas_core.api import ComponentContext, Section


class CreamSection(Section):
    """Warm-up: no board updates and no distillation before this point (paper: 20 of 120 epochs).

    ``warmup_steps`` wins over ``warmup_epochs``; with neither, the first sixth of training.
    """

    warmup_epochs: float | None = Field(None, ge=0, description="epochs of plain training before the board opens")
    warmup_steps: int | None = Field(None, ge=0, description="optimiser steps of plain training (overrides warmup_epochs)")


def warmup_end(context: ComponentContext) -> int:
    """The first step at which the board and distillation are active (steps counted by the
    run's schedule, the one the trainer follows)."""
    section = context.section("cream") or CreamSection()
    if section.warmup_steps is not None:
        return int(section.warmup_steps)
    if section.warmup_epochs is not None:
        return context.schedule.steps_in(section.warmup_epochs)
    return context.schedule.total_steps // 6


def configured_teacher(context: ComponentContext) -> str:
    """The teacher the config names, for messages."""
    teacher = context.config.teacher
    return f"'{teacher.name}'" if teacher is not None else "none"
