"""Shared helpers for benchmark scripts: build runs from overrides, write result files."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from nas_core.config import load_config
from nas_core.run import Run

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def make_run(run_dir: Path, overrides: list[str], config: Path | None = None) -> Run:
    base = ["train.progress=false", "train.tensorboard=false", f"run_dir={run_dir}"]
    return Run.create(load_config(config or REPO / "tests" / "base.yaml", base + overrides))


def write_result(name: str, data: dict[str, Any], quick: bool) -> Path:
    """benchmarks/results/<name>[-quick].json with machine facts and a timestamp."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'-quick' if quick else ''}.json"
    payload = {
        "benchmark": name,
        "quick": quick,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()},
        **data,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)
    return path
