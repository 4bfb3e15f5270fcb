"""The built-in plugin: the engine's own spaces, ops, data sets and baseline components.

It is registered before any third-party plugin and uses exactly the same hooks they do.
"""

from __future__ import annotations

from pydantic import Field

from nas_core import hookimpl
from nas_core.components.additive import LayerAdditiveEvaluator, LayerAdditiveOptions
from nas_core.components.evaluators import AccuracyEvaluator, AccuracyOptions
from nas_core.components.fusion import RankFusionEvaluator, RankFusionOptions
from nas_core.components.ranking_loss import RankingLoss, RankingLossOptions
from nas_core.components.samplers import FairOptions, FairSampler, SandwichOptions, SandwichSampler, UniformOptions, UniformSampler
from nas_core.components.structural import DepthEvaluator, MacsEvaluator, ParamsEvaluator, StructuralOptions
from nas_core.components.searchers import (
    EvolutionOptions,
    EvolutionSearcher,
    NSGA2Options,
    NSGA2Searcher,
    RandomOptions,
    RandomSearcher,
)
from nas_core.config import Section
from nas_core.data.cifar10 import Cifar10Options, cifar10
from nas_core.data.image_folder import ImageFolderOptions, image_folder
from nas_core.registry import Registry
from nas_core.spaces.nas_bench_macro import nas_bench_macro
from nas_core.spaces.ops import build_mbconv, build_skip


class NasBenchMacroOptions(Section):
    width: float = Field(1.0, gt=0, le=4, description="channel multiplier (1.0: the benchmark's networks)")
    num_classes: int = Field(10, ge=2, le=100_000, description="classifier outputs")


@hookimpl
def nas_register_search_spaces(registry: Registry) -> None:
    registry.register("nas-bench-macro", nas_bench_macro, options=NasBenchMacroOptions)


@hookimpl
def nas_register_ops(registry: Registry) -> None:
    registry.register("mbconv", build_mbconv)
    registry.register("skip", build_skip)


@hookimpl
def nas_register_datasets(registry: Registry) -> None:
    registry.register("cifar10", cifar10, options=Cifar10Options)
    registry.register("image-folder", image_folder, options=ImageFolderOptions)


@hookimpl
def nas_register_samplers(registry: Registry) -> None:
    registry.register("uniform", UniformSampler, options=UniformOptions)
    registry.register("fairnas", FairSampler, options=FairOptions)
    registry.register("sandwich", SandwichSampler, options=SandwichOptions)


@hookimpl
def nas_register_regularizers(registry: Registry) -> None:
    registry.register("ranking-loss", RankingLoss, options=RankingLossOptions)


@hookimpl
def nas_register_evaluators(registry: Registry) -> None:
    registry.register("accuracy", AccuracyEvaluator, options=AccuracyOptions)
    registry.register("rank-fusion", RankFusionEvaluator, options=RankFusionOptions)
    registry.register("layer-additive", LayerAdditiveEvaluator, options=LayerAdditiveOptions)
    registry.register("macs", MacsEvaluator, options=StructuralOptions)
    registry.register("params", ParamsEvaluator, options=StructuralOptions)
    registry.register("depth", DepthEvaluator, options=StructuralOptions)


@hookimpl
def nas_register_searchers(registry: Registry) -> None:
    registry.register("random", RandomSearcher, options=RandomOptions)
    registry.register("evolution", EvolutionSearcher, options=EvolutionOptions)
    registry.register("nsga2", NSGA2Searcher, options=NSGA2Options)
