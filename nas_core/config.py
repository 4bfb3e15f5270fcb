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
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator

from nas_core.errors import ConfigError
from nas_core.registry import Registries, RegistryError
from nas_core.slots import NAMED, SLOTS, Slot


def _scalar_kinds(annotation: Any) -> set[type]:
    """Which of int, float and bool a field annotation admits (through Optional / Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _scalar_kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_scalar_kinds(a) for a in typing.get_args(annotation)))
    return {annotation} & {int, float, bool}


class Section(BaseModel):
    """Base of every config model (plugins' too): unknown keys are errors, at every level.

    Values are checked, not coerced into sense: floats must be finite (no NaN / infinity), a
    number field refuses ``true`` / ``false``, and a flag refuses anything but ``true`` / ``false``
    (pydantic would read ``1`` or ``"yes"`` as true and ``true`` as 1)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_number_mixups(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name) if info.field_name else None
        kinds = _scalar_kinds(field.annotation) if field is not None else set()
        if isinstance(value, bool) and kinds and bool not in kinds:
            raise ValueError(f"Input should be a number, not {str(value).lower()}")
        if kinds == {bool} and not isinstance(value, bool):
            raise ValueError("Input should be true or false")
        return value


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


MAX_STEPS = 10**10
"""Upper bound of every step count: a larger one is a typo, not a plan."""

SEED_LIMIT = 2**32
"""Seeds are 0 <= seed < 2**32 (NumPy's limit; torch's and Python's generators take them too)."""

ONNX_OPSETS = (7, 20)
"""Opsets torch's TorchScript ONNX exporter writes (``torch.onnx._constants`` in torch 2.14;
a test checks this against the installed torch)."""


class OptimizerConfig(Section):
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0, le=100)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(4e-5, ge=0, le=10)
    no_decay_bn_bias: bool = True


class SchedulerConfig(Section):
    name: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0, le=MAX_STEPS)
    min_lr: float = Field(0.0, ge=0, le=100)


class TrainConfig(Section):
    epochs: float = Field(1.0, gt=0, le=1e5, description="may be fractional for short proxy runs")
    max_steps: int | None = Field(None, gt=0, le=MAX_STEPS, description="stop after this many optimiser steps")
    batch_size: int = Field(128, gt=0, le=2**20, description="global batch: split evenly over torchrun processes")
    micro_batches: int = Field(1, gt=0, le=2**20, description="gradient accumulation over this many slices per process")
    label_loss: Literal["ce", "none"] = "ce"
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    grad_clip: float | None = Field(5.0, gt=0)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    log_every_steps: int = Field(20, gt=0, le=MAX_STEPS)
    checkpoint_every_steps: int = Field(0, ge=0, le=MAX_STEPS, description="0: only at epoch ends and the end")
    progress: bool = True
    tensorboard: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.micro_batches > self.batch_size:
            raise ValueError(f"micro_batches {self.micro_batches} is larger than batch_size {self.batch_size}")
        if self.scheduler.min_lr > self.optimizer.lr:
            raise ValueError(f"scheduler.min_lr {self.scheduler.min_lr} is above optimizer.lr {self.optimizer.lr}")
        return self


class ConstraintsConfig(Section):
    max_flops: float | None = Field(None, gt=0)
    min_flops: float | None = Field(None, ge=0)
    max_params: float | None = Field(None, gt=0)
    min_params: float | None = Field(None, ge=0)
    max_latency_ms: float | None = Field(None, gt=0, description="predicted latency limit in ms (needs search.latency_table)")


class SearchConfig(Section):
    searcher: ComponentConfig = Field(default_factory=lambda: ComponentConfig(name="evolution"))
    constraints: ConstraintsConfig = Field(default_factory=ConstraintsConfig)
    latency_table: str | None = Field(None, description="latency table ('nas latency build') for max_latency_ms and the 'latency' objective")
    latency_device: str | None = Field(
        None, description="device the table must have been measured on, as the table names it; default: this machine's run device"
    )
    latency_margin_pct: float | None = Field(
        None, ge=0, lt=100, description="safety margin added to predictions checked against max_latency_ms; default: the table's (from its check)"
    )


class RankConfig(Section):
    num_archs: int = Field(200, gt=2, le=10**6)
    seed: int = Field(0, ge=0, lt=SEED_LIMIT)
    bootstrap: int = Field(1000, ge=0, le=10**6)
    top_k: list[int] = Field(default_factory=lambda: [10, 20], description="sizes of the top sets compared (each > 0)")
    ground_truth: str | None = Field(None, description="NAS-Bench-Macro JSON; default: $NAS_DATA/nas-bench-macro/...")

    @field_validator("top_k", mode="before")
    @classmethod
    def _positive_sizes(cls, value: Any) -> Any:
        if isinstance(value, list):
            for i, k in enumerate(value):
                if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
                    raise ValueError(f"item {i} is {k!r}; each size must be an integer > 0")
        return value


class ExportConfig(Section):
    onnx: bool = True
    onnx_opset: int = Field(17, ge=ONNX_OPSETS[0], le=ONNX_OPSETS[1], description="ONNX opset the export writes")


class RunConfig(Section):
    """The whole run. Top-level keys not listed here must be sections of loaded plugins."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    seed: int = Field(0, ge=0, lt=SEED_LIMIT)
    device: str = Field("auto", description="auto (cuda if available), cpu, cuda, cuda:1, mps")
    run_dir: str = Field("runs/default", description="the run's folder (checkpoint, logs, results)")
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

    @field_validator("device")
    @classmethod
    def _compute_device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda|cuda:[0-9]+|mps", value):
            raise ValueError(f"'{value}' is not a compute device (use auto, cpu, cuda, cuda:N or mps)")
        return value

    @field_validator("run_dir")
    @classmethod
    def _named_folder(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty (name the run's folder, e.g. runs/my-run)")
        if "\0" in value:
            raise ValueError("contains a NUL character")
        return value

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
        message = "unknown key" if problem["type"] == "extra_forbidden" else problem["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {loc or '<root>'}: {message}")
    return lines


MAX_NESTING = 64
"""A config nested deeper than this is not a config (and would exhaust the parser's stack)."""


def _nesting(data: Any) -> int:
    """How deeply mappings and lists nest (iterative, each shared node counted once)."""
    deepest, seen, todo = 0, set(), [(data, 0)]
    while todo:
        node, depth = todo.pop()
        if not isinstance(node, (dict, list)) or id(node) in seen:
            continue
        seen.add(id(node))
        deepest = max(deepest, depth + 1)
        if deepest > MAX_NESTING:
            break
        todo.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


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
    except RecursionError:
        raise ConfigError(f"override {key}: the value is nested too deeply") from None
    if _nesting(parsed) > MAX_NESTING:
        raise ConfigError(f"override {key}: the value is nested more than {MAX_NESTING} levels deep")
    return key.split("."), parsed


def _list_index(items: list, part: str, override: str, where: str) -> int:
    """The list position ``part`` names, or one line saying why it names none."""
    span = f"indexes 0..{len(items) - 1}" if items else "no items"
    if not part.isdigit():
        raise ConfigError(f"override {override}: {where} is a list ({span}); '{part}' is not an index")
    index = int(part)
    if index >= len(items):
        raise ConfigError(
            f"override {override}: {where} has {len(items)} item{'s' if len(items) != 1 else ''} ({span}); index {index} is out of range "
            f"(to add items, give the whole list: {where}=[...])"
        )
    return index


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``data`` at a dotted path: mappings are created on the way, lists are indexed (an
    index must exist); anything else on the way is one error line."""
    override = ".".join(path)
    node: Any = data
    for i, part in enumerate(path):
        where = ".".join(path[:i]) or "<root>"
        last = i == len(path) - 1
        if isinstance(node, list):
            index = _list_index(node, part, override, where)
            if last:
                node[index] = value
                return
            child = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
                return
            child = node.get(part)
            if child is None and path[i + 1].isdigit():
                raise ConfigError(
                    f"override {override}: {'.'.join(path[: i + 1])} has no items to index (give the whole list: {'.'.join(path[: i + 1])}=[...])"
                )
            if child is None:
                child = node[part] = {}
        else:
            raise ConfigError(f"override {override}: {where} is not a mapping (it is {node!r:.40})")
        node = child
    raise AssertionError("unreachable")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's settings: a readable, non-empty UTF-8 YAML mapping of sane depth."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a config file")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or type(exc).__name__})") from None
    binary_at = raw.find(b"\0")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        binary_at = exc.start if binary_at < 0 else min(binary_at, exc.start)
    if binary_at >= 0:
        raise ConfigError(f"{path}: not a YAML text file (binary data at byte {binary_at})")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise ConfigError(f"{path}: {where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config") from None
    if data is None:
        raise ConfigError(f"{path}: the config file is empty (write {{}} to take every default)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: <root>: expected a mapping of settings, got {type(data).__name__}")
    if _nesting(data) > MAX_NESTING:
        raise ConfigError(f"{path}: nested more than {MAX_NESTING} levels deep; not a config")
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
