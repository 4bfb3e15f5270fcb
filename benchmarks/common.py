"""Shared helpers for benchmark scripts: build runs from overrides, write result files."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import torch

from nas_core.checked_json import write_json_atomic
from nas_core.config import load_config
from nas_core.run import Run

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def make_run(run_dir: Path, overrides: list[str], config: Path | None = None) -> Run:
    base = ["train.progress=false", "train.tensorboard=false", f"run_dir={run_dir}"]
    return Run.create(load_config(config or REPO / "tests" / "base.yaml", base + overrides))


def write_result(name: str, data: dict[str, Any], quick: bool, path: Path | None = None) -> Path:
    """benchmarks/results/<name>[-quick].json (or ``path``) with machine facts and a timestamp,
    written atomically; a ``machine`` entry in ``data`` replaces the default one."""
    path = path or RESULTS / f"{name}{'-quick' if quick else ''}.json"
    payload = {
        "benchmark": name,
        "quick": quick,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()},
        **data,
    }
    return write_json_atomic(payload, path)


def cpu_ticks() -> dict[int, tuple[int, str, int]]:
    """Per process: CPU ticks so far (user + system), command line (first 120 characters) and
    scheduling policy (5 = SCHED_IDLE), from /proc: two snapshots tell what else used the CPU."""
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text[text.rindex(")") + 2 :].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            ticks[int(stat.parent.name)] = (int(fields[11]) + int(fields[12]), cmdline[:120], int(fields[38]))
        except (OSError, ValueError, IndexError):
            continue
    return ticks
