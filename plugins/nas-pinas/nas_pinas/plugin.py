"""The ``pinas`` plugin: Pi-NAS (ICCV 2021) on the engine's hook points.

Registers the ResNeSt-like space ``pinas-resnest``, the ``cross-path`` sampler, the
``cross-path-infonce`` regularizer (views, neck, loss), the ``mean-teacher`` teacher (EMA +
queue), the ``knn`` and ``linear-probe`` evaluators and the ``pinas`` config section (collapse
guard). The per-step hook returns the collapse metrics the regularizer measured.
"""

from __future__ import annotations

from pydantic import Field

from nas_core.api import Registry, Section, StepContext, hookimpl
from nas_pinas.components import (
    METRICS,
    CrossPathInfoNCE,
    CrossPathOptions,
    CrossPathSampler,
    InfoNCEOptions,
    MeanTeacher,
    MeanTeacherOptions,
)
from nas_pinas.evaluators import KnnEvaluator, KnnOptions, LinearProbeEvaluator, LinearProbeOptions
from nas_pinas.space import pinas_resnest

NAS_PLUGIN_API = "1.2"  # Sampler.paths_per_step


class PinasSection(Section):
    """``pinas:`` section of a run config: the feature-collapse guard."""

    collapse_threshold: float = Field(0.2, ge=0, description="warn when the feature spread (healthy ~1, collapsed 0) falls below this")
    collapse_warmup: int = Field(50, ge=0, description="steps before the guard may warn (random init has low spread)")
    collapse_window: int = Field(10, gt=0, description="steps averaged by the guard")


class PinasSpaceOptions(Section):
    width: float = Field(1.0, gt=0, le=4, description="channel multiplier (1.0: the published space)")
    num_classes: int = Field(1000, gt=0)
    image_size: int = Field(224, gt=0)
    small_input: bool = Field(False, description="stride-1 stem without max-pool, for 32x32 images")


@hookimpl
def nas_register_search_spaces(registry: Registry) -> None:
    registry.register("pinas-resnest", pinas_resnest, options=PinasSpaceOptions)


@hookimpl
def nas_register_samplers(registry: Registry) -> None:
    registry.register("cross-path", CrossPathSampler, options=CrossPathOptions)


@hookimpl
def nas_register_regularizers(registry: Registry) -> None:
    registry.register("cross-path-infonce", CrossPathInfoNCE, options=InfoNCEOptions)


@hookimpl
def nas_register_teachers(registry: Registry) -> None:
    registry.register("mean-teacher", MeanTeacher, options=MeanTeacherOptions)


@hookimpl
def nas_register_evaluators(registry: Registry) -> None:
    registry.register("knn", KnnEvaluator, options=KnnOptions)
    registry.register("linear-probe", LinearProbeEvaluator, options=LinearProbeOptions)


@hookimpl
def nas_register_config_sections(registry: Registry) -> None:
    registry.register("pinas", PinasSection)


@hookimpl
def nas_after_train_step(ctx: StepContext, metrics: dict[str, float]) -> dict[str, float] | None:
    """Feature-collapse signals of the step (``pinas/feat_std``, ``pinas/key_std``, ``pinas/collapse``)."""
    return ctx.extras.get(METRICS)
