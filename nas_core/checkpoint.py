"""Checkpoint files: their formats, atomic writes, safe reads and the random state they carry.

Two kinds of files leave the engine:

- a **supernet checkpoint** (``checkpoint.pt``, :data:`CHECKPOINT_FORMAT`): ``format``,
  ``space``, ``space_options``, ``step``, ``total_steps``, ``supernet`` (state dict),
  ``optimizer``, ``scheduler``, ``loader``, ``rng`` (:func:`rng_state`), ``components`` and
  ``component_modules`` (by slot), ``plugins`` (what plugins added);
- an **exported subnet** (``subnet.pt``, :data:`SUBNET_FORMAT`): ``format``, ``space``,
  ``space_options``, ``arch``, ``ops``, ``macs``, ``params``, ``feature_info``, ``state_dict``.

A file is written to a temporary file in the same folder, flushed to disk and renamed over the
target, so a crash mid-write leaves the previous file intact. Reading never unpickles code:
only tensors and plain containers are accepted (``torch.load(weights_only=True)``), and a
truncated, foreign or mismatched file is a :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_core.errors import CheckpointError

CHECKPOINT_FORMAT = "nas_core.checkpoint/1"
CHECKPOINT_NAME = "checkpoint.pt"
SUBNET_FORMAT = "nas_core.subnet/1"
SUBNET_NAME = "subnet.pt"


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; any failure is one :class:`CheckpointError` line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Weights only load failed" in str(exc):
            reason = "it contains pickled objects other than tensors and plain data (refused: weights_only)"
        raise CheckpointError(f"{path}: cannot read checkpoint ({reason[:200]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a checkpoint of this engine (top level is {type(state).__name__})")
    return state


def read_supernet_checkpoint(path: str | Path, space: str | None = None, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A supernet checkpoint, checked to be one (and, given ``space``, of that search space)."""
    path = Path(path)
    state = load_checkpoint(path, map_location=map_location)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a supernet checkpoint of this engine (format {state.get('format')!r})")
    if space is not None and state.get("space") != space:
        raise CheckpointError(f"{path}: checkpoint is for space '{state.get('space')}', the config says '{space}'")
    return state


def read_subnet(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """An exported subnet file (or its export folder), checked to be one."""
    path = Path(path)
    if path.is_dir():
        path = path / SUBNET_NAME
    state = load_checkpoint(path, map_location=map_location)
    if state.get("format") != SUBNET_FORMAT:
        raise CheckpointError(f"{path}: not an exported subnet (format {state.get('format')!r})")
    return state


# ------------------------------------------------------------------------------ random state


def python_rng_state(rng: random.Random | None = None) -> list:
    """The state of a ``random.Random`` (default: the global one) as weights_only-safe data."""
    version, internal, gauss = (rng or random).getstate()
    return [version, list(internal), gauss]


def set_python_rng_state(state: list, rng: random.Random | None = None) -> None:
    """Restore what :func:`python_rng_state` returned."""
    version, internal, gauss = state
    (rng or random).setstate((int(version), tuple(int(v) for v in internal), gauss))


def rng_state() -> dict[str, Any]:
    """The state of every global generator (torch, CUDA, Python's ``random``, NumPy) as
    weights_only-safe data, for a checkpoint."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": python_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    set_python_rng_state(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
