"""Driving the real engine from a test: open a run from a config file, train, search, export.

For tests that need more than the kit's tiny stand-ins (real data, a plugin's own config file,
one training step at a time). These are the functions the ``nas`` commands call::

    from nas_core.testing import Trainer, open_run, search

    run = open_run("configs/my-method.yaml", ["train.max_steps=4", "run_dir=/tmp/x"])
    Trainer(run).fit()                      # or .train_step(), one optimiser step
    result = search(run)

A run exposes ``run.context`` (what components get), ``run.space``, ``run.supernet``,
``run.data``, the built components (``run.sampler``, ``run.regularizers``, ``run.teacher``,
``run.evaluator``, ``run.searcher``) and ``run.config``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from pydantic import ValidationError

from nas_core.cli import main as run_cli
from nas_core.commands import export, rank, run_all, search, train
from nas_core.config import RunConfig, load_config, validation_messages
from nas_core.errors import ConfigError
from nas_core.export import export_subnet
from nas_core.restore import load_trained_supernet
from nas_core.run import Run
from nas_core.trainer import Trainer


def open_run(config: str | Path | Mapping[str, Any] | None = None, overrides: Sequence[str] = (), *, run_dir: str | Path | None = None) -> Run:
    """A run as the ``nas`` commands open it: a config file (or a dict, or None for the
    defaults) with ``key.path=value`` overrides, every installed plugin loaded as configured."""
    if isinstance(config, Mapping):
        try:
            resolved = RunConfig.model_validate(dict(config))
        except ValidationError as exc:
            raise ConfigError(*validation_messages("<config>", exc)) from None
        if overrides:
            raise ValueError("overrides apply to config files; merge them into the dict instead")
    else:
        resolved = load_config(config, list(overrides))
    return Run.create(resolved, run_dir)


__all__ = [
    "Run",
    "Trainer",
    "export",
    "export_subnet",
    "load_trained_supernet",
    "open_run",
    "rank",
    "run_all",
    "run_cli",
    "search",
    "train",
]
