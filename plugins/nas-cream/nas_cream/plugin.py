"""Entry point of the ``cream`` plugin: registers its components, space and config section."""

from __future__ import annotations

from nas_core.api import Registry, hookimpl

from nas_cream.regularizer import CreamDistill, CreamDistillOptions
from nas_cream.sampler import CreamSampler, CreamSamplerOptions
from nas_cream.searcher import BoardSearcher, BoardSearcherOptions
from nas_cream.settings import CreamSection
from nas_cream.space import CreamSpaceOptions, cream_imagenet
from nas_cream.teacher import CreamTeacher, CreamTeacherOptions

NAS_PLUGIN_API = "1.2"  # Sampler.paths_per_step, StepContext.metrics (rho, meta gradients)


@hookimpl
def nas_register_config_sections(registry: Registry) -> None:
    registry.register("cream", CreamSection)


@hookimpl
def nas_register_search_spaces(registry: Registry) -> None:
    registry.register("cream-imagenet", cream_imagenet, options=CreamSpaceOptions)


@hookimpl
def nas_register_samplers(registry: Registry) -> None:
    registry.register("cream", CreamSampler, options=CreamSamplerOptions)


@hookimpl
def nas_register_teachers(registry: Registry) -> None:
    registry.register("cream", CreamTeacher, options=CreamTeacherOptions)


@hookimpl
def nas_register_regularizers(registry: Registry) -> None:
    registry.register("cream", CreamDistill, options=CreamDistillOptions)


@hookimpl
def nas_register_searchers(registry: Registry) -> None:
    registry.register("cream-board", BoardSearcher, options=BoardSearcherOptions)
