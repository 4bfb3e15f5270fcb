"""Short runs for plugin tests: a tiny config, in-process plugins, train / search helpers.

:class:`Kit` is what the ``nas_kit`` fixture hands a test. It builds configs on top of a tiny
default (space ``tiny``, data ``tiny-synthetic``, 4 steps on CPU, random search over 4
architectures) and runs them through the same code as the ``nas`` commands, with the plugins a
test names registered in-process next to installed ones, and a :class:`HookRecorder` attached::

    def test_my_sampler(nas_kit):
        result = nas_kit.train({"sampler": {"name": "my-sampler"}}, plugins=[my_package.plugin])
        assert result.recorder.count("nas_before_train_step") == 4
        nas_kit.assert_lifecycle_order(result.recorder)
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping, Sequence

from pydantic import ValidationError

from nas_core import __version__
from nas_core.config import RunConfig, resolve_config, validation_messages
from nas_core.context import ComponentContext
from nas_core.errors import ConfigError
from nas_core.plugins import PluginHost, PluginInfo, check_api
from nas_core.run import Run
from nas_core.search_result import SearchResult
from nas_core.testing import stand_in
from nas_core.testing.lifecycle import assert_lifecycle_order
from nas_core.testing.recorder import HookRecorder

TINY_CONFIG: dict[str, Any] = {
    "seed": 0,
    "device": "cpu",
    "space": {"name": "tiny"},
    "data": {"name": "tiny-synthetic"},
    "train": {
        "max_steps": 4,
        "batch_size": 16,
        "log_every_steps": 2,
        "progress": False,
        "tensorboard": False,
        "optimizer": {"name": "sgd", "lr": 0.05},
    },
    "evaluator": {"name": "accuracy", "bn_recal_batches": 1, "batch_size": 32},
    "search": {"searcher": {"name": "random", "num_samples": 4}},
}
"""The kit's default run: seconds on one CPU core. Tests override only what they exercise."""

STAND_IN_PLUGIN = "nas-testing"
RECORDER_PLUGIN = "hook-recorder"


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of config dicts: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            # a component given a new name starts from scratch: old options would not fit it
            if "name" in value and value.get("name") != out[key].get("name"):
                out[key] = copy.deepcopy(dict(value))
            else:
                out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class KitHost(PluginHost):
    """A :class:`PluginHost` that also registers in-process plugins (modules or objects) after
    the installed ones, with the same API-version check and validation."""

    def __init__(self, extra: Mapping[str, Any] = (), **kwargs: Any):
        self._extra = dict(extra)
        super().__init__(**kwargs)

    def _discover(self) -> None:
        in_process = [n for n in self._enable if n in self._extra]  # "installed" here, not through an entry point
        self._enable = [n for n in self._enable if n not in self._extra]
        super()._discover()
        self._enable += in_process
        for name, plugin in self._extra.items():
            if self.pm.is_registered(plugin):  # also installed and loaded from its entry point
                continue
            check_api(name, plugin)
            distribution = getattr(plugin, "__name__", type(plugin).__name__)
            self._register(name, plugin, PluginInfo(name, __version__, f"in-process {distribution}"))


def plugin_name(plugin: Any) -> str:
    """Name of an in-process plugin: its module's last dotted part before ``.plugin``, or its class."""
    if isinstance(plugin, ModuleType):
        parts = plugin.__name__.split(".")
        return parts[-2] if parts[-1] == "plugin" and len(parts) > 1 else parts[-1]
    return type(plugin).__name__


@dataclass
class KitResult:
    """What a kit run produced: the run, its recorded hook calls, logged metrics, search result."""

    run: Run
    recorder: HookRecorder
    final: dict[str, float] = field(default_factory=dict)
    search: SearchResult | None = None

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """Every line of the run's ``metrics.jsonl``."""
        path = self.run.run_dir / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []

    @property
    def run_dir(self) -> Path:
        return self.run.run_dir


class Kit:
    """Builds tiny configs and runs them in ``root`` (a fresh folder per run)."""

    def __init__(self, root: str | Path, base: Mapping[str, Any] | None = None):
        self.root = Path(root)
        self.base = dict(base if base is not None else TINY_CONFIG)
        self._runs = 0

    assert_lifecycle_order = staticmethod(assert_lifecycle_order)

    def config(self, overrides: Mapping[str, Any] | None = None, **keys: Any) -> RunConfig:
        """The tiny config deep-merged with ``overrides`` (and keyword top-level keys)."""
        data = merge(merge(self.base, overrides or {}), keys)
        if "run_dir" not in data:
            self._runs += 1
            data["run_dir"] = str(self.root / f"run{self._runs}")
        try:
            config = RunConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(*validation_messages("<kit config>", exc)) from None
        config._source = "<kit config>"
        return config

    def open(
        self,
        config: RunConfig | Mapping[str, Any] | None = None,
        plugins: Sequence[Any] | Mapping[str, Any] = (),
        autoload: bool = False,
        record: bool = True,
    ) -> tuple[Run, HookRecorder]:
        """A :class:`Run` as ``Run.create`` makes it, with the stand-ins and ``plugins`` in-process.

        ``autoload=False`` (default) loads only the installed plugins the config enables, so a
        plugin is tested alone with the core; a recorder is registered unless ``record=False``.
        """
        if not isinstance(config, RunConfig):
            config = self.config(config or {})
        named = dict(plugins) if isinstance(plugins, Mapping) else {plugin_name(p): p for p in plugins}
        recorder = HookRecorder()
        extra = {STAND_IN_PLUGIN: stand_in, **named}
        if record:
            extra[RECORDER_PLUGIN] = recorder
        host = KitHost(extra, enable=config.plugins.enable, disable=config.plugins.disable, autoload=autoload)
        resolve_config(config, host.registries)
        run = Run(config, host)
        run.hooks.configure(config)
        return run, recorder

    def context(self, config: RunConfig | Mapping[str, Any] | None = None, plugins: Sequence[Any] | Mapping[str, Any] = (), **kwargs: Any) -> ComponentContext:
        """The :class:`ComponentContext` of an opened tiny run (with ``plugins`` in-process), to
        build a component by hand: ``MySampler(nas_kit.context(), MySamplerOptions())``."""
        run, _ = self.open(config, plugins, **kwargs)
        return run.context

    def build(self, kind: str, spec: Mapping[str, Any], config: RunConfig | Mapping[str, Any] | None = None,
              plugins: Sequence[Any] | Mapping[str, Any] = (), **kwargs: Any) -> Any:
        """One component of ``kind`` built from ``spec`` (``{name, **options}``) exactly as a run
        builds it (options validated by its registered model), in an opened tiny run."""
        return self.context(config, plugins, **kwargs).build(kind, spec)

    def train(self, config: RunConfig | Mapping[str, Any] | None = None, plugins: Sequence[Any] | Mapping[str, Any] = (), **kwargs: Any) -> KitResult:
        """Train the supernet (``nas train``); the checkpoint lands in the run's folder."""
        from nas_core import commands

        run, recorder = self.open(config, plugins, **kwargs)
        final = commands.train(run)
        return KitResult(run, recorder, final)

    def search(self, config: RunConfig | Mapping[str, Any] | None = None, plugins: Sequence[Any] | Mapping[str, Any] = (), checkpoint: str | Path | None = None, **kwargs: Any) -> KitResult:
        """Search a trained supernet (``nas search``); ``checkpoint`` defaults to the run's own."""
        from nas_core import commands

        run, recorder = self.open(config, plugins, **kwargs)
        result = commands.search(run, str(checkpoint) if checkpoint else None)
        return KitResult(run, recorder, search=result)

    def train_and_search(self, config: RunConfig | Mapping[str, Any] | None = None, plugins: Sequence[Any] | Mapping[str, Any] = (), **kwargs: Any) -> KitResult:
        """Train, then search the result, in one run (the first half of ``nas run``)."""
        from nas_core import commands

        run, recorder = self.open(config, plugins, **kwargs)
        final = commands.train(run)
        result = commands.search(run)
        return KitResult(run, recorder, final, result)
