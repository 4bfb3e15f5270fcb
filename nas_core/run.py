"""A run: the resolved config, loaded plugins, device, search space, supernet, data, components.

Everything a command needs is built here, lazily, from the config -- so ``nas export`` never
decodes a data set and ``nas search`` never builds an optimiser. Components never see the run:
they get its :class:`~nas_core.context.ComponentContext` (``run.context``).
"""

from __future__ import annotations

import platform
import sys
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from nas_core import __version__, distributed
from nas_core.checked_json import write_json_atomic
from nas_core.components.base import Batch, Component, Evaluator, Regularizer, Sampler, Searcher, Teacher
from nas_core.config import RunConfig, resolve_config
from nas_core.context import ComponentContext, build_component
from nas_core.data.arrays import DataSplits
from nas_core.errors import ConfigError, NasError
from nas_core.plugins import PluginHost
from nas_core.slots import SLOTS, Slot
from nas_core.spaces.space import SearchSpace
from nas_core.spaces.supernet import Supernet


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an unavailable device is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NasError(f"device: '{name}' is not a device name (use auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NasError(f"device: '{name}' requested but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise NasError(f"device: '{name}' requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise NasError(f"device: '{name}' requested but MPS is not available on this machine")
    return device


class Hooks:
    """Typed facade over ``pm.hook`` so call sites name real hooks.

    Lifecycle hooks get the run's component context; ``run`` is still passed for plugins
    written for plugin API 1.0 (deprecated, see :mod:`nas_core.hookspecs`)."""

    def __init__(self, host: PluginHost, run: "Run"):
        self._hook = host.hook
        self._run = run
        self._context = run.context

    def configure(self, config: RunConfig) -> None:
        self._hook.nas_configure(config=config)

    def space_built(self) -> None:
        self._hook.nas_space_built(context=self._context, run=self._run)

    def train_start(self) -> None:
        self._hook.nas_train_start(context=self._context, run=self._run)

    def batch_loaded(self, batch: Batch) -> None:
        self._hook.nas_batch_loaded(context=self._context, run=self._run, batch=batch)

    def before_train_step(self, ctx: Any) -> None:
        self._hook.nas_before_train_step(ctx=ctx)

    def extra_loss(self, ctx: Any, index: int, output: Any) -> list[torch.Tensor]:
        return [t for t in self._hook.nas_extra_loss(ctx=ctx, index=index, output=output) if t is not None]

    def after_train_step(self, ctx: Any, metrics: dict[str, float]) -> dict[str, float]:
        merged: dict[str, float] = {}
        for extra in self._hook.nas_after_train_step(ctx=ctx, metrics=metrics):
            merged.update(extra or {})
        return merged

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> dict[str, float]:
        merged: dict[str, float] = {}
        for extra in self._hook.nas_epoch_end(context=self._context, run=self._run, epoch=epoch, metrics=metrics):
            merged.update(extra or {})
        return merged

    def train_end(self) -> None:
        self._hook.nas_train_end(context=self._context, run=self._run)

    def checkpoint_save(self, state: dict[str, Any]) -> None:
        self._hook.nas_checkpoint_save(context=self._context, run=self._run, state=state)

    def checkpoint_load(self, state: dict[str, Any]) -> None:
        self._hook.nas_checkpoint_load(context=self._context, run=self._run, state=state)

    def search_start(self, searcher_name: str) -> None:
        self._hook.nas_search_start(context=self._context, run=self._run, searcher_name=searcher_name)

    def search_end(self, result: Any) -> None:
        self._hook.nas_search_end(context=self._context, run=self._run, result=result)


def open_host(config: RunConfig) -> PluginHost:
    """Load plugins as the config says and validate the plugin-owned parts of the config."""
    host = PluginHost(enable=config.plugins.enable, disable=config.plugins.disable)
    resolve_config(config, host.registries)
    return host


class Run:
    """One command's world. Build with :meth:`Run.create`."""

    def __init__(self, config: RunConfig, host: PluginHost, run_dir: str | Path | None = None):
        self.config = config
        self.host = host
        self.registries = host.registries
        rank_device = distributed.init_from_env()
        self.device = rank_device if rank_device is not None and config.device in ("auto", "cuda") else resolve_device(config.device)
        self.run_dir = Path(run_dir or config.run_dir)
        self.rank = distributed.rank()
        self.world_size = distributed.world_size()
        self._building: list[str] = []
        self._slots: dict[str, list[Component]] = {}
        self.context = ComponentContext(
            config, self.registries, device=self.device, run_dir=self.run_dir, rank=self.rank, world_size=self.world_size,
            space=lambda: self.space, data=lambda: self.data, supernet=lambda: self.supernet, components=self.slot_components,
            legacy_run=self,
        )
        self.hooks = Hooks(host, self)

    @classmethod
    def create(cls, config: RunConfig, run_dir: str | Path | None = None) -> "Run":
        host = open_host(config)
        run = cls(config, host, run_dir)
        run.hooks.configure(config)
        return run

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs and checkpoints."""
        return self.rank == 0

    # ---------------------------------------------------------------- model

    @cached_property
    def space(self) -> SearchSpace:
        return self.registries.search_spaces.build(self.config.space.name, self.config.space.options, ops=self.registries.ops.objects())

    @cached_property
    def supernet(self) -> Supernet:
        """The supernet with every regularizer attached, on the run's device; fires nas_space_built."""
        self._enter("supernet")
        try:
            torch.manual_seed(self.config.seed)
            supernet = self.space.build_supernet()
            for regularizer in self.regularizers:
                regularizer.attach(supernet)
            supernet.to(self.device)
            for component in self.components().values():
                for module in component.trainable_modules():
                    module.to(self.device)
        finally:
            self._building.remove("supernet")
        self.__dict__["supernet"] = supernet
        self.hooks.space_built()
        return supernet

    # ---------------------------------------------------------------- data

    @cached_property
    def data(self) -> DataSplits:
        return self.registries.datasets.build(self.config.data.name, self.config.data.options)

    # ---------------------------------------------------------------- components

    def _enter(self, what: str) -> None:
        """Guard against two components asking for each other while being built."""
        if what in self._building:
            chain = " -> ".join([*self._building, what])
            raise NasError(f"components ask for each other while being built ({chain}); ask for a peer or the supernet in a method, not in __init__")
        self._building.append(what)

    def _build_slot(self, slot: Slot) -> list[Component]:
        self._enter(slot.name)
        try:
            registry = getattr(self.registries, slot.registry)
            return [build_component(registry.entry(c.name), c.options, self.context) for c in self.config.configured(slot)]
        finally:
            self._building.remove(slot.name)

    def slot_components(self, name: str) -> list[Component]:
        """The components of one slot (built on first use)."""
        if name not in self._slots:
            self._slots[name] = self._build_slot(next(s for s in SLOTS if s.name == name))
        return self._slots[name]

    @property
    def sampler(self) -> Sampler:
        return self.slot_components("sampler")[0]

    @property
    def regularizers(self) -> list[Regularizer]:
        return self.slot_components("regularizers")

    @property
    def teacher(self) -> Teacher | None:
        found = self.slot_components("teacher")
        return found[0] if found else None

    @property
    def evaluator(self) -> Evaluator:
        return self.slot_components("evaluator")[0]

    @property
    def searcher(self) -> Searcher:
        return self.slot_components("searcher")[0]

    def components(self) -> dict[str, Component]:
        """Training components by checkpoint key (``sampler``, ``regularizers.0``, ``teacher``)."""
        keyed: dict[str, Component] = {}
        for slot in SLOTS:
            if not slot.trains:
                continue
            found = self.slot_components(slot.name)
            if slot.many:
                keyed.update({f"{slot.name}.{i}": c for i, c in enumerate(found)})
            elif found:
                keyed[slot.name] = found[0]
        return keyed

    # ---------------------------------------------------------------- compatibility

    def check(self) -> None:
        """Build every component, attach the regularizers, and refuse combinations that cannot
        work -- before any data is read or any step is trained (``nas config check`` too).

        Each component's ``requires()`` is checked against the config and against the other
        components' (two components requiring different values of one setting are named
        together), a regularizer listed twice is refused unless it is ``repeatable``, then each
        component's own ``check(context)`` runs."""
        built = self._all_components()
        problems: list[str] = []
        needs: dict[str, tuple[str, Any]] = {}
        conflicting: set[str] = set()
        for _path, label, component in built:
            requires = getattr(component, "requires", None)  # duck-typed components may lack it
            for key, value in (requires() if requires else {}).items():
                if key in needs and needs[key][1] != value:
                    first, wanted = needs[key]
                    problems.append(f"{first} needs {key}: {_show(wanted)}, {label} needs {key}: {_show(value)}; they cannot be combined")
                    conflicting.add(key)
                needs.setdefault(key, (label, value))
        for key, (label, value) in needs.items():
            actual = _setting(self.config, key)
            if key not in conflicting and actual != value:
                problems.append(f"{label} needs {key}: {_show(value)} (the config has {_show(actual)})")
        first_use: dict[str, str] = {}
        for path, label, component in built:
            if path.startswith("regularizers.") and not getattr(component, "repeatable", False):
                if label in first_use:
                    problems.append(f"{first_use[label]} and {path} are both {label}, which can be used once per run")
                first_use.setdefault(label, path)
        if problems:
            raise ConfigError(*(f"{self.config.source}: {p}" for p in problems))
        _ = self.supernet  # attaches the regularizers: a space they cannot work on fails here
        for _path, _label, component in built:
            if hasattr(component, "check"):
                try:
                    component.check(self.context)
                except ConfigError:
                    raise
                except NasError as exc:  # it is about this config: say which file
                    raise ConfigError(*(f"{self.config.source}: {m}" for m in exc.messages)) from None

    def _all_components(self) -> list[tuple[str, str, Component]]:
        """(config path, ``kind 'name'``, component) for every component of the run, in slot order."""
        out = []
        for slot in SLOTS:
            for i, (c, component) in enumerate(zip(self.config.configured(slot), self.slot_components(slot.name))):
                out.append((f"{slot.config_path}.{i}" if slot.many else slot.config_path, f"{slot.kind} '{c.name}'", component))
        return out

    # ---------------------------------------------------------------- metadata

    def metadata(self, command: str) -> dict[str, Any]:
        return {
            "command": command,
            "argv": sys.argv,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "nas_core": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": str(self.device),
            "world_size": self.world_size,
            "plugins": self.host.metadata(),
            "config": self.config.to_dict(),
        }

    def write_metadata(self, command: str) -> Path | None:
        """``run_dir/metadata-<command>.json`` (rank 0 only): versions, plugins, resolved config."""
        if not self.is_main:
            return None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return write_json_atomic(self.metadata(command), self.run_dir / f"metadata-{command}.json", default=str)


def _setting(config: RunConfig, dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part, None)
    return value


def _show(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
