"""A run: the resolved config, loaded plugins, device, search space, supernet, data, components.

Everything a command needs is built here, lazily, from the config -- so ``nas export`` never
decodes a data set and ``nas search`` never builds an optimiser.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from nas_core import __version__, distributed
from nas_core.components.base import Evaluator, Regularizer, Sampler, Searcher, Teacher
from nas_core.config import RunConfig, resolve_config
from nas_core.data.arrays import DataSplits
from nas_core.errors import NasError
from nas_core.plugins import PluginHost
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
    return device


class Hooks:
    """Typed facade over ``pm.hook`` so call sites name real hooks."""

    def __init__(self, host: PluginHost):
        self._hook = host.hook

    def configure(self, config: RunConfig) -> None:
        self._hook.nas_configure(config=config)

    def space_built(self, run: "Run") -> None:
        self._hook.nas_space_built(run=run)

    def train_start(self, run: "Run") -> None:
        self._hook.nas_train_start(run=run)

    def batch_loaded(self, run: "Run", batch: Any) -> None:
        self._hook.nas_batch_loaded(run=run, batch=batch)

    def before_train_step(self, ctx: Any) -> None:
        self._hook.nas_before_train_step(ctx=ctx)

    def extra_loss(self, ctx: Any, index: int, output: Any) -> list[torch.Tensor]:
        return [t for t in self._hook.nas_extra_loss(ctx=ctx, index=index, output=output) if t is not None]

    def after_train_step(self, ctx: Any, metrics: dict[str, float]) -> dict[str, float]:
        merged: dict[str, float] = {}
        for extra in self._hook.nas_after_train_step(ctx=ctx, metrics=metrics):
            merged.update(extra or {})
        return merged

    def epoch_end(self, run: "Run", epoch: int, metrics: dict[str, float]) -> dict[str, float]:
        merged: dict[str, float] = {}
        for extra in self._hook.nas_epoch_end(run=run, epoch=epoch, metrics=metrics):
            merged.update(extra or {})
        return merged

    def train_end(self, run: "Run") -> None:
        self._hook.nas_train_end(run=run)

    def checkpoint_save(self, run: "Run", state: dict[str, Any]) -> None:
        self._hook.nas_checkpoint_save(run=run, state=state)

    def checkpoint_load(self, run: "Run", state: dict[str, Any]) -> None:
        self._hook.nas_checkpoint_load(run=run, state=state)

    def search_start(self, run: "Run", searcher_name: str) -> None:
        self._hook.nas_search_start(run=run, searcher_name=searcher_name)

    def search_end(self, run: "Run", result: Any) -> None:
        self._hook.nas_search_end(run=run, result=result)


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
        self.hooks = Hooks(host)
        rank_device = distributed.init_from_env()
        self.device = rank_device if rank_device is not None and config.device in ("auto", "cuda") else resolve_device(config.device)
        self.run_dir = Path(run_dir or config.run_dir)
        self.rank = distributed.rank()
        self.world_size = distributed.world_size()

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
        ops = {entry.name: entry.obj for entry in self.registries.ops}
        return self.registries.search_spaces.build(self.config.space.name, self.config.space.options, ops=ops)

    @cached_property
    def supernet(self) -> Supernet:
        """The supernet with every regularizer attached, on the run's device; fires nas_space_built."""
        torch.manual_seed(self.config.seed)
        supernet = self.space.build_supernet()
        for regularizer in self.regularizers:
            regularizer.attach(supernet)
        supernet.to(self.device)
        for component in self.components().values():
            for module in component.trainable_modules():
                module.to(self.device)
        self.__dict__["supernet"] = supernet
        self.hooks.space_built(self)
        return supernet

    # ---------------------------------------------------------------- data

    @cached_property
    def data(self) -> DataSplits:
        return self.registries.datasets.build(self.config.data.name, self.config.data.options)

    # ---------------------------------------------------------------- components

    def _build(self, registry_name: str, component: Any) -> Any:
        registry = getattr(self.registries, registry_name)
        return registry.build(component.name, component.options, run=self)

    @cached_property
    def sampler(self) -> Sampler:
        return self._build("samplers", self.config.sampler)

    @cached_property
    def regularizers(self) -> list[Regularizer]:
        return [self._build("regularizers", c) for c in self.config.regularizers]

    @cached_property
    def teacher(self) -> Teacher | None:
        return self._build("teachers", self.config.teacher) if self.config.teacher else None

    @cached_property
    def evaluator(self) -> Evaluator:
        return self._build("evaluators", self.config.evaluator)

    @cached_property
    def searcher(self) -> Searcher:
        return self._build("searchers", self.config.search.searcher)

    def components(self) -> dict[str, Any]:
        """Training components by checkpoint slot name."""
        slots: dict[str, Any] = {"sampler": self.sampler}
        slots.update({f"regularizers.{i}": r for i, r in enumerate(self.regularizers)})
        if self.teacher is not None:
            slots["teacher"] = self.teacher
        return slots

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

    def write_metadata(self, command: str) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / f"metadata-{command}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.metadata(command), indent=1, default=str))
        tmp.replace(path)
        return path
