"""What a component may know about the run it is part of: :class:`ComponentContext`.

Every component factory is called as ``factory(context, options)``. The context is a narrow,
read-only view of one run: the validated config, the search space, the device and seed, the
training schedule, a logger, and -- built only when first asked for -- the data and the
supernet, so ``nas export`` never decodes a data set. It also lets a component find the other
components of the run (``peer``) and build one more from a config spec (``build``).

This module sits low in the import graph: it knows nothing of the run, the trainer or the
plugin manager; the run hands it callables.
"""

from __future__ import annotations

import logging
import warnings
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch
from pydantic import BaseModel, ValidationError

from nas_core.config import ComponentConfig, NoOptions, RunConfig, validation_messages
from nas_core.deprecation import NasPluginDeprecationWarning
from nas_core.errors import ConfigError
from nas_core.registry import Entry, Registries, RegistryError
from nas_core.schedule import Schedule
from nas_core.slots import slot

if TYPE_CHECKING:
    from nas_core.data.arrays import DataSplits
    from nas_core.spaces.space import SearchSpace
    from nas_core.spaces.supernet import Supernet

CURRENT_FACTORIES = (1, 1)
"""Plugins declaring an older plugin API get the 1.0 calling convention ``factory(run, **options)``."""


class ComponentContext:
    """The run as a component sees it. Built by the engine; components only read it.

    Attributes:
        config: the validated run config (treat it as read-only).
        space: the search space (choices per layer, canonical forms, complexity, ...).
        device: where tensors live (``cpu``, ``cuda:N``).
        seed: the run's seed (derive every random stream of a component from it).
        run_dir: the run's folder (only rank 0 writes there).
        rank, world_size: this process under torchrun (0 and 1 otherwise).
        logger: a :class:`logging.Logger` for components (``nas_core.components``).

    Built on first use:
        data: the data set splits (:class:`nas_core.api.DataSplits`); ``nas export`` and
            ``nas config check`` never decode it unless a component asks.
        schedule: steps per epoch, total steps, ``lr_at(step)``, ``epoch_of(step)`` (it counts
            the training images, so it reads the data too).
        supernet: the run's supernet, with every regularizer attached. Ask for it in a method,
            not in ``__init__`` (the supernet is built after the components it attaches).
    """

    def __init__(
        self,
        config: RunConfig,
        registries: Registries,
        *,
        device: torch.device,
        run_dir: Path,
        space: Callable[[], "SearchSpace"],
        data: Callable[[], "DataSplits"],
        supernet: Callable[[], "Supernet"],
        components: Callable[[str], list[Any]],
        rank: int = 0,
        world_size: int = 1,
        legacy_run: Any = None,
    ):
        self.config = config
        self.device = device
        self.run_dir = Path(run_dir)
        self.rank = rank
        self.world_size = world_size
        self.logger = logging.getLogger("nas_core.components")
        self._registries = registries
        self._space = space
        self._data = data
        self._supernet = supernet
        self._components = components
        self._legacy_run = legacy_run

    # ---------------------------------------------------------------- the run

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes logs and checkpoints."""
        return self.rank == 0

    @property
    def space(self) -> "SearchSpace":
        return self._space()

    @property
    def data(self) -> "DataSplits":
        """The data set (decoded on first use)."""
        return self._data()

    @property
    def supernet(self) -> "Supernet":
        """The run's supernet with regularizers attached (built on first use)."""
        return self._supernet()

    @cached_property
    def schedule(self) -> Schedule:
        """The training schedule: the one the trainer follows (needs the training split's size)."""
        return Schedule.of(self.config.train, len(self.data.train))

    def section(self, name: str) -> BaseModel | None:
        """A plugin's validated top-level config section (with its defaults when the config
        does not have it), or None when no loaded plugin registered ``name``."""
        return self.config.section(name)

    # ---------------------------------------------------------------- other components

    def peer(self, name: str) -> Any:
        """The run's component in slot ``name`` (``sampler``, ``teacher``, ``evaluator``,
        ``searcher``), or None when the slot is empty (no teacher). Built on first use; ask in
        a method rather than in ``__init__`` when two components need each other."""
        s = slot(name)
        if s.many:
            raise ValueError(f"slot '{s.name}' holds a list: use context.peers('{s.name}')")
        found = self._components(s.name)
        return found[0] if found else None

    def peers(self, name: str) -> list[Any]:
        """Every component of slot ``name`` (``regularizers``; ``[teacher]`` or ``[]``; ...)."""
        return list(self._components(slot(name).name))

    def build(self, kind: str, spec: ComponentConfig | Mapping[str, Any], *, where: str | None = None) -> Any:
        """Build one more component of ``kind`` (``evaluator``, ``sampler``, ...) from a config
        spec ``{name: ..., **options}``, exactly as the engine builds the run's own: the options
        are validated by the model the component registered (nested models arrive as models)
        and the factory gets this context. ``where`` (a dotted config path) prefixes errors.

        The component is not part of the run's slots: a wrapper that builds members owns them
        (include their ``state_dict()`` in its own if they have state).
        """
        s = slot(kind)
        if isinstance(spec, ComponentConfig):
            name, raw = spec.name, spec.raw_options()
        else:
            raw = dict(spec)
            name = raw.pop("name", None)
            if not isinstance(name, str):
                raise ConfigError(f"{self.config.source}: {where or s.kind}.name: a {s.kind} spec needs a name")
        registry = getattr(self._registries, s.registry)
        try:
            entry = registry.entry(name)
        except RegistryError as exc:
            raise ConfigError(f"{self.config.source}: {where or s.kind}.name: {exc}") from None
        model = entry.options or NoOptions
        try:
            options = model.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(*validation_messages(self.config.source, exc, where or s.kind)) from None
        return build_component(entry, options, self)


def build_component(entry: Entry, options: BaseModel, context: ComponentContext) -> Any:
    """Call a component factory: ``factory(context, options)`` with the validated options model.

    A plugin that declared plugin API 1.0 wrote its factories as ``factory(run, **options)``;
    they are still called that way (with a deprecation warning) until plugin API 2.
    """
    if entry.api is not None and entry.api < CURRENT_FACTORIES:
        warnings.warn(
            f"{entry.source}: component '{entry.name}' is built the plugin API 1.0 way, factory(run, **options), "
            "which plugin API 2 removes; write factory(context, options) and declare NAS_PLUGIN_API = \"1.1\"",
            NasPluginDeprecationWarning,
            stacklevel=2,
        )
        if context._legacy_run is None:
            raise ConfigError(f"component '{entry.name}' ({entry.source}) needs a whole run (plugin API 1.0) and cannot be built here")
        return entry.obj(context._legacy_run, **options.model_dump())
    return entry.obj(context, options)


__all__ = ["ComponentContext", "build_component"]
