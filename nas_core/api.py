"""The public API for plugin and bridge authors: everything a component may import.

``nas_core`` (top level: ``hookimpl``, versions), ``nas_core.api`` (this module) and
``nas_core.testing`` (the pytest kit) are public and follow the plugin API version
(:data:`nas_core.PLUGIN_API_VERSION`); every other module of ``nas_core`` is private and may
change in any release. A test of this repository fails when a plugin, the example plugin or
the OpenMMLab bridge imports a private module.

A component in five lines::

    from nas_core.api import ComponentContext, Sampler, Section, hookimpl

    class EveryOtherOptions(Section):
        period: int = 2

    class EveryOther(Sampler):
        def __init__(self, context: ComponentContext, options: EveryOtherOptions):
            self.space, self.period = context.space, options.period
        ...

    @hookimpl
    def nas_register_samplers(registry):
        registry.register("every-other", EveryOther, options=EveryOtherOptions)

What is here, by topic:

- plugging in: ``hookimpl``, ``Registry``, ``Section``, ``ComponentConfig`` (a ``{name, ...}``
  spec, for options that name other components), ``PLUGIN_API_VERSION``;
- components: ``Component``, ``Sampler``, ``Regularizer``, ``Teacher``, ``Evaluator``,
  ``Searcher``; what they receive: ``ComponentContext``, ``Schedule``, ``StepContext``,
  ``Batch``, ``PathOutput``;
- search spaces: ``SearchSpace``, ``MBConvSpace``, ``LayerSpec``, ``OpSpec``, ``FixedLayer``,
  ``FeatureInfo``, ``Arch``, ``Supernet``, ``Subnet``, ``ChoiceBlock``, ``count_macs``,
  ``count_params``, ``inherit_state_dict``, ``build_space`` / ``validated_space_options`` /
  ``space_names`` (registered spaces by name, outside a run); op helpers ``ACTIVATIONS``,
  ``make_divisible``, ``conv_bn``, ``InvertedResidual``, ``Skip``;
- evaluation: ``batchnorms``, ``preserved_bn_state``, ``recalibrate_bn``,
  ``score_after_recalibration``, ``evaluation_data`` / ``EvaluationData``, ``accuracy``;
- data: ``ImageArrays``, ``DataSplits``, ``Normalizer``, ``seeded_subset``, ``data_root``;
- search and ranking: ``SearchProblem``, ``SearchResult``, ``Candidate``, ``sample_distinct``
  (distinct canonical architectures), ``rank_statistics`` (Kendall tau, Spearman, bootstrap
  CIs), ``load_table`` (the NAS-Bench-Macro ground truth);
- checkpoints: ``save_atomic``, ``load_checkpoint``, ``read_supernet_checkpoint``,
  ``read_subnet``, ``load_subnet``, ``CHECKPOINT_FORMAT``, ``CHECKPOINT_NAME``,
  ``SUBNET_FORMAT``, ``SUBNET_NAME``; random state: ``rng_state`` / ``set_rng_state`` (every
  global generator), ``python_rng_state`` / ``set_python_rng_state`` (one ``random.Random``);
- torchrun: ``world_size``, ``rank``, ``is_distributed``, ``all_reduce_mean``,
  ``all_gather_objects``, ``barrier``;
- errors: ``NasError`` and its kinds; ``NasPluginDeprecationWarning``.
"""

from __future__ import annotations

from nas_core import PLUGIN_API_VERSION, hookimpl
from nas_core.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    SUBNET_FORMAT,
    SUBNET_NAME,
    load_checkpoint,
    python_rng_state,
    read_subnet,
    read_supernet_checkpoint,
    rng_state,
    save_atomic,
    set_python_rng_state,
    set_rng_state,
)
from nas_core.components.base import Batch, Component, Evaluator, PathOutput, Regularizer, Sampler, Searcher, StepContext, Teacher
from nas_core.config import ComponentConfig, Section, data_root
from nas_core.context import ComponentContext
from nas_core.data.arrays import DataSplits, ImageArrays, Normalizer, seeded_subset
from nas_core.deprecation import NasPluginDeprecationWarning
from nas_core.distributed import all_gather_objects, all_reduce_mean, barrier, is_distributed, rank, world_size
from nas_core.errors import ArchitectureError, CheckpointError, ConfigError, DataError, NasError, PluginError
from nas_core.evaluation import (
    EvaluationData,
    accuracy,
    batchnorms,
    evaluation_data,
    preserved_bn_state,
    recalibrate_bn,
    score_after_recalibration,
)
from nas_core.export import load_subnet
from nas_core.ground_truth import load_table
from nas_core.ranking import rank_statistics, sample_distinct
from nas_core.registry import Registry, RegistryError
from nas_core.schedule import Schedule
from nas_core.search_result import Candidate, SearchProblem, SearchResult
from nas_core.spaces.ops import ACTIVATIONS, InvertedResidual, Skip, conv_bn, make_divisible
from nas_core.named_spaces import build_space, space_names, validated_space_options
from nas_core.spaces.space import FeatureInfo, FixedLayer, LayerSpec, MBConvSpace, OpSpec, SearchSpace, count_macs, count_params
from nas_core.spaces.supernet import Arch, ChoiceBlock, Subnet, Supernet, inherit_state_dict

__all__ = [
    # plugging in
    "PLUGIN_API_VERSION",
    "hookimpl",
    "Registry",
    "RegistryError",
    "Section",
    "ComponentConfig",
    # components and what they receive
    "Component",
    "Sampler",
    "Regularizer",
    "Teacher",
    "Evaluator",
    "Searcher",
    "ComponentContext",
    "Schedule",
    "StepContext",
    "Batch",
    "PathOutput",
    # search spaces
    "SearchSpace",
    "MBConvSpace",
    "LayerSpec",
    "OpSpec",
    "FixedLayer",
    "FeatureInfo",
    "Arch",
    "Supernet",
    "Subnet",
    "ChoiceBlock",
    "count_macs",
    "count_params",
    "inherit_state_dict",
    "build_space",
    "space_names",
    "validated_space_options",
    "ACTIVATIONS",
    "make_divisible",
    "conv_bn",
    "InvertedResidual",
    "Skip",
    # evaluation
    "batchnorms",
    "preserved_bn_state",
    "recalibrate_bn",
    "score_after_recalibration",
    "evaluation_data",
    "EvaluationData",
    "accuracy",
    # data
    "ImageArrays",
    "DataSplits",
    "Normalizer",
    "seeded_subset",
    "data_root",
    # search and ranking
    "SearchProblem",
    "SearchResult",
    "Candidate",
    "sample_distinct",
    "rank_statistics",
    "load_table",
    # checkpoints and random state
    "save_atomic",
    "load_checkpoint",
    "read_supernet_checkpoint",
    "read_subnet",
    "load_subnet",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "SUBNET_FORMAT",
    "SUBNET_NAME",
    "rng_state",
    "set_rng_state",
    "python_rng_state",
    "set_python_rng_state",
    # torchrun
    "world_size",
    "rank",
    "is_distributed",
    "all_reduce_mean",
    "all_gather_objects",
    "barrier",
    # errors
    "NasError",
    "ConfigError",
    "PluginError",
    "CheckpointError",
    "DataError",
    "ArchitectureError",
    "NasPluginDeprecationWarning",
]
