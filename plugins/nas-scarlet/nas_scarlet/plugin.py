"""The ``scarlet`` plugin: ScarletNAS for nas_core.

Registers the ``les`` regularizer (learnable equivariant stabilizer), the ``scarlet-imagenet``
search space (with SCARLET-A/B/C by name), its ``scarlet-sepconv`` stem op and the ``scarlet``
config section. Strict-fairness sampling and the NSGA-II Pareto search are the engine's own
``fairnas`` sampler and ``nsga2`` searcher (see ``configs/`` in this package for presets).
"""

from __future__ import annotations

from pydantic import Field

from nas_core.api import Registry, Section, hookimpl
from nas_scarlet.regularizer import LesOptions, LesRegularizer, ScarletSection
from nas_scarlet.space import SPACE_NAME, build_sepconv, scarlet_space

NAS_PLUGIN_API = "1.2"  # StepContext.metrics (the stabilizer drift)


class ScarletSpaceOptions(Section):
    width: float = Field(1.0, gt=0, le=4, description="channel multiplier (1.0 = the published space)")
    num_classes: int = Field(1000, gt=1)
    input_size: int = Field(224, ge=32, description="square input side (224 = ImageNet)")
    dropout: float = Field(0.0, ge=0, lt=1)


@hookimpl
def nas_register_ops(registry: Registry) -> None:
    registry.register("scarlet-sepconv", build_sepconv)


@hookimpl
def nas_register_search_spaces(registry: Registry) -> None:
    registry.register(SPACE_NAME, scarlet_space, options=ScarletSpaceOptions)


@hookimpl
def nas_register_regularizers(registry: Registry) -> None:
    registry.register("les", LesRegularizer, options=LesOptions)


@hookimpl
def nas_register_config_sections(registry: Registry) -> None:
    registry.register("scarlet", ScarletSection)
