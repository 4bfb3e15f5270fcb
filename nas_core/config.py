"""Run configuration: YAML (safe-loaded) validated by strict pydantic-v2 models.

Validation has two phases because plugins define part of the schema:

1. :func:`load_config` parses the file, applies ``a.b.c=value`` overrides and validates the
   engine's own keys (every model forbids unknown keys).
2. :func:`resolve_config` validates what plugins own, once their registries are filled: the
   options next to each component ``name`` (against the options model its factory registered)
   and every top-level plugin section (against the model registered under its name).

Errors read ``FILE: dotted.path: message``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from nas_core.errors import ConfigError
from nas_core.registry import Registries, RegistryError
from nas_core.slots import NAMED, SLOTS, Slot


class Section(BaseModel):
    """Base of every config model (plugins' too): unknown keys are errors, at every level."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NoOptions(Section):
    """Options model for components that take no options."""


class ComponentConfig(BaseModel):
    """``{name: <registered name>, <option>: <value>, ...}``; options are validated in phase 2."""

    model_config = ConfigDict(extra="allow")
    name: str
    _options: BaseModel | None = PrivateAttr(default=None)

    @property
    def options(self) -> BaseModel:
        if self._options is None:
            raise RuntimeError(f"component '{self.name}' options used before resolve_config()")
        return self._options

    def raw_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PluginsConfig(Section):
    enable: list[str] = Field(default_factory=list, description="plugins this run needs (loaded even if autoload is off)")
    disable: list[str] = Field(default_factory=list, description="installed plugins not to load")


class OptimizerConfig(Section):
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(4e-5, ge=0)
    no_decay_bn_bias: bool = True


class SchedulerConfig(Section):
    name: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    min_lr: float = Field(0.0, ge=0)


class TrainConfig(Section):
    epochs: float = Field(1.0, gt=0, description="may be fractional for short proxy runs")
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimiser steps")
    batch_size: int = Field(128, gt=0, description="global batch: split evenly over torchrun processes")
    micro_batches: int = Field(1, gt=0, description="gradient accumulation over this many slices per process")
    label_loss: Literal["ce", "none"] = "ce"
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    grad_clip: float | None = Field(5.0, gt=0)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    log_every_steps: int = Field(20, gt=0)
    checkpoint_every_steps: int = Field(0, ge=0, description="0: only at epoch ends and the end")
    progress: bool = True
    tensorboard: bool = True


class ConstraintsConfig(Section):
    max_flops: float | None = Field(None, gt=0)
    min_flops: float | None = Field(None, ge=0)
    max_params: float | None = Field(None, gt=0)
    min_params: float | None = Field(None, ge=0)


class SearchConfig(Section):
    searcher: ComponentConfig = Field(default_factory=lambda: ComponentConfig(name="evolution"))
    constraints: ConstraintsConfig = Field(default_factory=ConstraintsConfig)


class RankConfig(Section):
    num_archs: int = Field(200, gt=2)
    seed: int = 0
    bootstrap: int = Field(1000, ge=0)
    top_k: list[int] = Field(default_factory=lambda: [10, 20])
    ground_truth: str | None = Field(None, description="NAS-Bench-Macro JSON; default: $NAS_DATA/nas-bench-macro/...")


class ExportConfig(Section):
    onnx: bool = True
    onnx_opset: int = 17


class RunConfig(Section):
    """The whole run. Top-level keys not listed here must be sections of loaded plugins."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    seed: int = 0
    device: str = Field("auto", description="auto (cuda if available), cpu, cuda, cuda:1, ...")
    run_dir: str = "runs/default"
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)
    space: ComponentConfig = Field(default_factory=lambda: ComponentConfig(name="nas-bench-macro"))
    data: ComponentConfig = Field(default_factory=lambda: ComponentConfig(name="cifar10"))
    train: TrainConfig = Field(default_factory=TrainConfig)
    sampler: ComponentConfig = Field(default_factory=lambda: ComponentConfig(name="uniform"))
    regularizers: list[ComponentConfig] = Field(default_factory=list)
    teacher: ComponentConfig | None = None
    evaluator: ComponentConfig = Field(default_factory=lambda: ComponentConfig(name="accuracy"))
    search: SearchConfig = Field(default_factory=SearchConfig)
    rank: RankConfig = Field(default_factory=RankConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    _source: str = PrivateAttr(default="<config>")

    @model_validator(mode="before")
    @classmethod
    def _default_component_names(cls, data: Any) -> Any:
        """``space: {width: 0.5}`` means the default space with that option (same for data,
        sampler, evaluator and search.searcher)."""
        if not isinstance(data, dict):
            return data
        for key in ("space", "data", "sampler", "evaluator"):
            if isinstance(data.get(key), dict) and "name" not in data[key]:
                data[key] = {"name": cls.model_fields[key].default_factory().name, **data[key]}
        search = data.get("search")
        if isinstance(search, dict) and isinstance(search.get("searcher"), dict) and "name" not in search["searcher"]:
            default = SearchConfig.model_fields["searcher"].default_factory().name
            search["searcher"] = {"name": default, **search["searcher"]}
        return data

    _sections: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        return self._source

    def section(self, name: str) -> BaseModel | None:
        """A validated plugin section, or None when the config does not have it."""
        return self._sections.get(name)

    def configured(self, slot: Slot) -> list[ComponentConfig]:
        """The components the config picks for one slot (``[]`` for no teacher)."""
        value = _walk(self, slot.config_path)
        return list(value) if slot.many else ([] if value is None else [value])

    def components(self) -> list[tuple[str, ComponentConfig, str]]:
        """Every (dotted path, component config, registry attribute) the config picks by name:
        space and data, then each component slot of :data:`nas_core.slots.SLOTS`."""
        pairs = [(path, _walk(self, path), registry) for path, registry in NAMED]
        for s in SLOTS:
            picked = self.configured(s)
            pairs += [(f"{s.config_path}.{i}" if s.many else s.config_path, c, s.registry) for i, c in enumerate(picked)]
        return pairs

    def to_dict(self) -> dict[str, Any]:
        """Resolved config with defaults and plugin sections, as plain data."""
        data = self.model_dump(mode="json", exclude_none=False)
        for key, section in self._sections.items():
            data[key] = section.model_dump(mode="json")
        for path, component, _ in self.components():
            if component._options is not None:
                target = _walk(data, path)
                target.update(component._options.model_dump(mode="json"))
        return data


def _walk(data: Any, dotted: str) -> Any:
    """``data`` at a dotted path: list items by index, mappings by key, models by attribute."""
    for part in dotted.split("."):
        if isinstance(data, list):
            data = data[int(part)]
        elif isinstance(data, dict):
            data = data[part]
        else:
            data = getattr(data, part)
    return data


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def validation_messages(source: str, error: ValidationError, prefix: str = "") -> list[str]:
    """One ``FILE: dotted.path: message`` line per problem pydantic found (all of them)."""
    lines = []
    for problem in error.errors():
        loc = ".".join(str(p) for p in (prefix.split(".") if prefix else []) + list(problem["loc"]))
        message = "unknown key" if problem["type"] == "extra_forbidden" else problem["msg"]
        lines.append(f"{source}: {loc or '<root>'}: {message}")
    return lines


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.optimizer.lr=0.1`` -> (['train', 'optimizer', 'lr'], 0.1); values are YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}': expected key.path=value")
    key, value = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}': empty key")
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        parsed = value
    return key.split("."), parsed


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    node: Any = data
    for i, part in enumerate(path[:-1]):
        if isinstance(node, list):
            node = node[int(part)]
            continue
        if not isinstance(node.get(part, {}), (dict, list)):
            raise ConfigError(f"override {'.'.join(path)}: {'.'.join(path[: i + 1])} is not a mapping")
        node = node.setdefault(part, {})
    last = path[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise ConfigError(f"{path}: {where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: <root>: expected a mapping of settings")
    return data


def load_config(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """Phase 1: read, override and validate the engine's own keys."""
    source = str(path) if path is not None else "<defaults>"
    data = read_yaml(path) if path is not None else {}
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(data, keys, value)
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(*validation_messages(source, exc)) from None
    config._source = source
    return config


def resolve_config(config: RunConfig, registries: Registries) -> RunConfig:
    """Phase 2: validate component options and plugin sections against registered models.

    Every problem is collected and reported together (one line each), not just the first.
    """
    problems: list[str] = []
    for path, component, registry_name in config.components():
        registry = getattr(registries, registry_name)
        try:
            entry = registry.entry(component.name)
        except RegistryError as exc:
            problems.append(f"{config.source}: {path}.name: {exc}")
            continue
        model = entry.options or NoOptions
        try:
            component._options = model.model_validate(component.raw_options())
        except ValidationError as exc:
            problems += validation_messages(config.source, exc, path)
    sections: dict[str, BaseModel] = {}
    for key, value in (config.model_extra or {}).items():
        if key not in registries.config_sections:
            known = ", ".join(registries.config_sections.list()) or "none"
            problems.append(
                f"{config.source}: {key}: unknown key (not an engine setting nor a section of a loaded plugin; plugin sections: {known})"
            )
            continue
        model = registries.config_sections.get(key)
        try:
            sections[key] = model.model_validate(value if value is not None else {})
        except ValidationError as exc:
            problems += validation_messages(config.source, exc, key)
    if problems:
        raise ConfigError(*problems)
    for key in registries.config_sections.list():
        if key not in sections:
            sections[key] = registries.config_sections.get(key).model_validate({})
    config._sections = sections
    return config


def data_root() -> Path:
    """Where real data lives: ``$NAS_DATA``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("NAS_DATA")
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[1]
    return checkout.parent / "shared" / "data"
