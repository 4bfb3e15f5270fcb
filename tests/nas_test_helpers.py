"""Helpers for the engine's tests: tiny real-data configs and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from nas_core.config import data_root, load_config
from nas_core.run import Run

REPO = Path(__file__).resolve().parents[1]


TINY = [
    "space.width=0.25",
    "data.train_subset=2000",
    "data.val_subset=500",
    "train.batch_size=64",
    "train.progress=false",
    "train.tensorboard=false",
    "train.log_every_steps=5",
    "evaluator.bn_recal_batches=2",
    "evaluator.batch_size=250",
    "export.onnx=false",
]


def tiny_overrides(run_dir: Path, *extra: str) -> list[str]:
    return [f"run_dir={run_dir}", *TINY, *extra]


def tiny_run(run_dir: Path, *extra: str) -> Run:
    return Run.create(load_config(REPO / "tests" / "base.yaml", tiny_overrides(run_dir, *extra)))


def nas(*args: str, env: dict | None = None, check: bool = False, timeout: float = 1500) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess; returns the completed process (text output)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}  # tiny nets: one thread is fastest
    proc = subprocess.run([sys.executable, "-m", "nas_core.cli", *args], capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"nas {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


