"""Every hook of the engine, grouped by phase. All hooks are prefixed ``nas_``.

How the pieces fit
==================
The five extension points -- **sampler, regularizer, teacher, evaluator, searcher** -- are
*components*: a plugin registers factories for them in a registration hook, the run config picks
one component per slot by name (``sampler: {name: fairnas}``; ``regularizers`` is a list), and
the engine calls the chosen object directly (the interfaces are in :mod:`nas_core.api`, the
public API). That way three installed methods never all fire on every step. A factory is
called as ``factory(context, options)``: ``context`` is the run's
:class:`~nas_core.api.ComponentContext`, ``options`` the validated instance of the options
model it was registered with. Broadcast hooks (lifecycle and the ``nas_extra_loss`` term) are
for cross-cutting concerns: logging, metrics, extra state.

Call order between plugins is not part of the contract: pluggy calls implementations
last-registered-first, the built-in plugin is registered first, and no hook here depends on
the order (collected results are merged by name, never positionally).

How the three reference methods map onto the hooks
==================================================
============  =======================================  ====================================  ===============================
hook point    Pi-NAS                                   ScarletNAS / FairNAS                  Cream
============  =======================================  ====================================  ===============================
sampler       ``Sampler.sample``: 2 paths differing   ``Sampler.sample``: m paths from per-  ``Sampler.sample``: prior /
              in every layer                          layer permutations, one update        uniform / board frequency
regularizer   ``Regularizer.path_loss``: cross-path    ``Regularizer.attach``: LES replaces   ``Regularizer.path_loss``:
              InfoNCE with the queue; owns the neck    skip ops; ``transform_export`` folds   0.5[rho KD + (2 - rho) CE]
teacher       ``Teacher.prepare``: EMA keys per path;  (none)                                 ``Teacher.prepare``: board
              ``Teacher.update``: EMA on active                                               entry via meta network;
              layers + queue                                                                  ``update``: admission + meta
evaluator     kNN / linear probe after BN recal.       accuracy after BN recalibration        (board accuracy in teacher)
searcher      any black-box searcher                   NSGA-II Pareto front (``Searcher``)    top board entry (``Searcher``)
============  =======================================  ====================================  ===============================

Registration hooks run once, right after plugins are loaded; lifecycle hooks of one run (one
command: ``config``, ``train``, ``search``, ``export``, ``rank`` or ``run``) follow this order.
``[x]`` is optional, ``x*`` repeats zero or more times, ``x+`` one or more times; the block is
machine-read: ``nas_core.testing.assert_lifecycle_order`` checks recorded calls against it::

    nas_configure
    -> [ nas_space_built
         -> [ nas_checkpoint_load ]
         -> [ nas_train_start
              -> ( nas_batch_loaded -> nas_before_train_step -> nas_extra_loss*
                   -> nas_after_train_step -> [ nas_epoch_end ] -> [ nas_checkpoint_save ] )*
              -> nas_checkpoint_save -> nas_train_end ]
         -> ( nas_checkpoint_load -> [ nas_search_start -> nas_search_end ] )* ]

That is: ``nas_checkpoint_load`` follows ``nas_space_built`` when resuming and before every
search / export / rank; ``nas_extra_loss`` runs once per path of the step (per path and slice
with ``train.micro_batches`` > 1; every other step hook once per optimiser step); ``nas_epoch_end``
and a ``nas_checkpoint_save`` close every epoch; the final checkpoint precedes ``nas_train_end``.

Lifecycle hooks receive the same ``context`` (:class:`~nas_core.api.ComponentContext`) that
components get; per-step hooks receive the step's :class:`~nas_core.api.StepContext` (``ctx``),
whose ``ctx.context`` is that same object.

Versioning
==========
The hook API has its own version, ``nas_core.PLUGIN_API_VERSION`` (``MAJOR.MINOR``). A plugin
module declares the version it was written for, ``NAS_PLUGIN_API = "1.1"`` (or ``"1.2"`` when it
needs what 1.2 added); a plugin whose major differs, or whose minor is newer than the engine's,
is rejected with a one-line error naming both versions. Within a major, hooks and arguments are
only added; an argument on its way out stays in its spec and is marked with
``warn_on_impl_args=deprecated_arguments(...)`` (:mod:`nas_core.deprecation`), so every
implementation that asks for it warns when its plugin loads.

Plugin API 1.1 gave lifecycle hooks a ``context`` argument and deprecated their ``run``
argument (the whole engine object; it goes away in plugin API 2), and changed component
factories from ``factory(run, **options)`` to ``factory(context, options)`` (plugins that
declare ``NAS_PLUGIN_API = "1"`` are still built the old way, with a deprecation warning).

Plugin API 1.2 added, without changing anything older: ``Regularizer.needs_step_loss`` and
``Regularizer.step_loss`` (a term over all the step's paths, one backward of the sum),
``Sampler.paths_per_step``, ``StepContext.metrics`` (scalars logged with the step),
``Supernet.path`` (a path as a network sharing the supernet's modules) and the latency fields
of search candidates. A plugin that relies on them declares ``"1.2"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas_core import hookspec
from nas_core.deprecation import deprecated_arguments

if TYPE_CHECKING:
    import torch

    from nas_core.components.base import Batch, PathOutput, StepContext
    from nas_core.config import RunConfig
    from nas_core.context import ComponentContext
    from nas_core.registry import Registry
    from nas_core.search_result import SearchResult

RUN_DEPRECATED = "use `context` (a ComponentContext: config, space, device, data, supernet, schedule, peers)"


def _run_deprecated(hook: str) -> dict:
    return {"warn_on_impl_args": deprecated_arguments(hook, since="1.1", run=RUN_DEPRECATED)}


# --------------------------------------------------------------------------------------------
# Registration: called once after plugins load. Each receives one registry; implementations
# call ``registry.register(name, factory, options=OptionsModel)``. Return value ignored.
# --------------------------------------------------------------------------------------------


@hookspec
def nas_register_search_spaces(registry: Registry) -> None:
    """Register search spaces: ``factory(ops, **options) -> nas_core.api.SearchSpace``.

    ``ops`` maps every registered op name to its factory, so spaces can use plugins' ops.
    """


@hookspec
def nas_register_ops(registry: Registry) -> None:
    """Register candidate ops: ``factory(in_channels, out_channels, stride, **params) -> nn.Module``.

    Spaces name their candidate ops by these names, so a plugin can add an op kind
    (for instance a learnable skip) and use it from any space description.
    """


@hookspec
def nas_register_datasets(registry: Registry) -> None:
    """Register data sets: ``factory(**options) -> nas_core.api.DataSplits``."""


@hookspec
def nas_register_samplers(registry: Registry) -> None:
    """Register path samplers: ``factory(context, options) -> Sampler``."""


@hookspec
def nas_register_regularizers(registry: Registry) -> None:
    """Register regularizers: ``factory(context, options) -> Regularizer``."""


@hookspec
def nas_register_teachers(registry: Registry) -> None:
    """Register teachers: ``factory(context, options) -> Teacher``."""


@hookspec
def nas_register_evaluators(registry: Registry) -> None:
    """Register evaluators: ``factory(context, options) -> Evaluator``."""


@hookspec
def nas_register_searchers(registry: Registry) -> None:
    """Register searchers: ``factory(context, options) -> Searcher``."""


@hookspec
def nas_register_config_sections(registry: Registry) -> None:
    """Register a top-level config section model under the plugin's section name.

    The section ``scarlet: {...}`` of a run config is validated by the model registered as
    ``scarlet``; the validated model is available as ``context.section("scarlet")``.
    """


# --------------------------------------------------------------------------------------------
# Lifecycle: configuration and construction. Broadcast to every loaded plugin; return ignored.
# --------------------------------------------------------------------------------------------


@hookspec
def nas_configure(config: RunConfig) -> None:
    """Called once per command after the config (and every plugin section) validated."""


@hookspec(**_run_deprecated("nas_space_built"))
def nas_space_built(context: ComponentContext, run: Any) -> None:
    """Called after the search space and its supernet are built and components attached,
    before any weights are loaded. ``context.space``, ``context.supernet`` and the
    components (``context.peer``) are ready."""


# --------------------------------------------------------------------------------------------
# Lifecycle: supernet training. Broadcast; return ignored unless stated.
# --------------------------------------------------------------------------------------------


@hookspec(**_run_deprecated("nas_train_start"))
def nas_train_start(context: ComponentContext, run: Any) -> None:
    """Called once before the first training step (also after a resume)."""


@hookspec(**_run_deprecated("nas_batch_loaded"))
def nas_batch_loaded(context: ComponentContext, run: Any, batch: Batch) -> None:
    """Called for every training batch after it was moved to the device (before the sampler).

    For cross-cutting inspection (data checks, logging); must not modify the batch.
    """


@hookspec
def nas_before_train_step(ctx: StepContext) -> None:
    """Called once before each optimiser step (also with ``train.micro_batches`` > 1), after
    the sampler chose ``ctx.paths``; ``ctx.batch`` is the step's whole batch."""


@hookspec
def nas_extra_loss(ctx: StepContext, index: int, output: PathOutput) -> torch.Tensor | None:
    """Collected: extra loss terms added to path ``index``'s loss before its backward pass.

    Returns a scalar tensor or None. Every non-None result is summed into the loss. With
    ``train.micro_batches`` > 1 it is called per path and slice; ``ctx.batch`` is the slice.
    """


@hookspec
def nas_after_train_step(ctx: StepContext, metrics: dict[str, float]) -> dict[str, float] | None:
    """Collected: called once after each optimiser step with the context of the whole step;
    may return extra scalar metrics to log.

    Returned dicts are merged into the step's metrics (names should be prefixed by the plugin).
    """


@hookspec(**_run_deprecated("nas_epoch_end"))
def nas_epoch_end(context: ComponentContext, run: Any, epoch: int, metrics: dict[str, float]) -> dict[str, float] | None:
    """Collected: called after each epoch; may return extra epoch metrics to log."""


@hookspec(**_run_deprecated("nas_train_end"))
def nas_train_end(context: ComponentContext, run: Any) -> None:
    """Called once after the last training step and the final checkpoint."""


# --------------------------------------------------------------------------------------------
# Lifecycle: checkpoints. Broadcast; the ``state`` dicts are shared and mutated in place.
# --------------------------------------------------------------------------------------------


@hookspec(**_run_deprecated("nas_checkpoint_save"))
def nas_checkpoint_save(context: ComponentContext, run: Any, state: dict[str, Any]) -> None:
    """Called while a checkpoint is assembled; add plugin state under ``state["plugins"][name]``.

    Values must be what ``torch.load(weights_only=True)`` can read (tensors, numbers, strings,
    lists, dicts). Component state is saved by the engine itself (``state_dict()``).
    """


@hookspec(**_run_deprecated("nas_checkpoint_load"))
def nas_checkpoint_load(context: ComponentContext, run: Any, state: dict[str, Any]) -> None:
    """Called after a checkpoint was read and the engine restored its own and components' state."""


# --------------------------------------------------------------------------------------------
# Lifecycle: search. Broadcast; return ignored.
# --------------------------------------------------------------------------------------------


@hookspec(**_run_deprecated("nas_search_start"))
def nas_search_start(context: ComponentContext, run: Any, searcher_name: str) -> None:
    """Called before a searcher runs on a trained supernet."""


@hookspec(**_run_deprecated("nas_search_end"))
def nas_search_end(context: ComponentContext, run: Any, result: SearchResult) -> None:
    """Called after a search with its result (chosen architecture, history, Pareto front)."""
