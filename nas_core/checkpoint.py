"""Atomic checkpoint files read with ``torch.load(weights_only=True)``.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed over
the target, so a crash mid-write leaves the previous checkpoint intact. Reading never unpickles
code: only tensors and plain containers are accepted, and a truncated or foreign file is a
:class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import torch

from nas_core.errors import CheckpointError


def save_atomic(obj: Any, path: str | Path) -> Path:
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


def python_rng_state(rng: random.Random | None = None) -> list:
    """The state of a ``random.Random`` (default: the global one) as weights_only-safe data."""
    version, internal, gauss = (rng or random).getstate()
    return [version, list(internal), gauss]


def set_python_rng_state(state: list, rng: random.Random | None = None) -> None:
    """Restore what :func:`python_rng_state` returned."""
    version, internal, gauss = state
    (rng or random).setstate((int(version), tuple(int(v) for v in internal), gauss))
