"""Checkpoint files: their formats, atomic writes, safe reads and the random state they carry.

Two kinds of files leave the engine:

- a **supernet checkpoint** (``checkpoint.pt``, :data:`CHECKPOINT_FORMAT`): ``format``,
  ``space``, ``space_options``, ``step``, ``total_steps``, ``supernet`` (state dict),
  ``optimizer``, ``scheduler``, ``loader``, ``rng`` (:func:`rng_state`), ``components`` and
  ``component_modules`` (by slot), ``plugins`` (what plugins added);
- an **exported subnet** (``subnet.pt``, :data:`SUBNET_FORMAT`): ``format``, ``space``,
  ``space_options``, ``arch``, ``ops``, ``macs``, ``params``, ``feature_info``, ``state_dict``.

A file is written by :func:`nas_core.atomic_file.write_atomic` (a temporary beside it, flushed
and renamed), so a crash mid-write leaves the previous file intact; the temporaries of killed
writers go with the next save. Reading never unpickles
code: only tensors and plain containers are accepted (``torch.load(weights_only=True)``), and
what was read is then checked key by key (:func:`check_supernet_checkpoint`), so a truncated,
foreign, mismatched or hand-edited file is one :class:`CheckpointError` naming the file and the
part that is wrong -- never a crash later on.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_core.atomic_file import write_atomic
from nas_core.errors import CheckpointError

CHECKPOINT_FORMAT = "nas_core.checkpoint/1"
CHECKPOINT_NAME = "checkpoint.pt"
SUBNET_FORMAT = "nas_core.subnet/1"
SUBNET_NAME = "subnet.pt"


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` through :func:`nas_core.atomic_file.write_atomic` (never
    half-written; stale temporaries of earlier, killed writers are removed first)."""
    return write_atomic(path, lambda handle: torch.save(obj, handle))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; any failure is one :class:`CheckpointError` line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # damaged bytes surface as any error of the unpickler (KeyError, struct.error, ...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not isinstance(exc, (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, OSError)):
            reason = f"{type(exc).__name__}: {reason}"
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
        raise CheckpointError(f"{path}: not a supernet checkpoint of this engine (format {_short(state.get('format'))})")
    check_supernet_checkpoint(state, path)
    if space is not None and state.get("space") != space:
        raise CheckpointError(f"{path}: checkpoint is for space '{state.get('space')}', the config says '{space}'")
    return state


_CHECKPOINT_KEYS: dict[str, type | tuple[type, ...]] = {
    "space": str,
    "space_options": dict,
    "step": int,
    "total_steps": int,
    "supernet": dict,
    "optimizer": dict,
    "scheduler": dict,
    "loader": dict,
    "rng": dict,
    "components": dict,
    "component_modules": dict,
    "plugins": dict,
}
"""Every key a supernet checkpoint has (what the trainer's ``state_dict`` writes), with its type."""


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, (str, int, float, type(None))) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def check_supernet_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Check a loaded checkpoint's structure: every key of :data:`_CHECKPOINT_KEYS` with its
    type, tensors as weights, the optimiser's and scheduler's state, the data position and every
    random state (each restored into a throwaway generator). One error line names the first
    wrong part."""
    problem = _checkpoint_problem(state)
    if problem:
        raise CheckpointError(f"{path}: damaged or not written by this engine: {problem}")


def _checkpoint_problem(state: dict[str, Any]) -> str | None:
    for key, kind in _CHECKPOINT_KEYS.items():
        if key not in state:
            return f"'{key}' is missing"
        if not isinstance(state[key], kind) or (kind is int and isinstance(state[key], bool)):
            return f"'{key}' is {_kind(state[key])}, expected {kind.__name__}"
    if not 0 <= state["step"] <= state["total_steps"] or state["total_steps"] <= 0:
        return f"'step' {state['step']} / 'total_steps' {state['total_steps']} are not 0 <= step <= total_steps"
    bad = next((k for k, v in state["supernet"].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None or not state["supernet"]:
        return "'supernet' is not a state dict of tensors" + (f" (entry {_short(bad)})" if bad is not None else " (it is empty)")
    optimizer = state["optimizer"]
    groups = optimizer.get("param_groups")
    if not isinstance(optimizer.get("state"), dict) or not isinstance(groups, list) or not groups:
        return "'optimizer' lacks its 'state' mapping or 'param_groups' list"
    if any(not isinstance(g, dict) or not isinstance(g.get("params"), list) or not isinstance(g.get("lr"), (int, float)) for g in groups):
        return "'optimizer.param_groups' entries need a 'params' list and an 'lr'"
    scheduler = state["scheduler"]
    if not isinstance(scheduler.get("last_epoch"), int) or not isinstance(scheduler.get("base_lrs"), list):
        return "'scheduler' lacks 'last_epoch' (int) or 'base_lrs' (list)"
    if len(scheduler["base_lrs"]) != len(groups):
        return f"'scheduler.base_lrs' has {len(scheduler['base_lrs'])} entries for {len(groups)} optimizer groups"
    if scheduler["last_epoch"] != state["step"]:
        return f"'scheduler.last_epoch' {scheduler['last_epoch']} does not match 'step' {state['step']}"
    loader = state["loader"]
    for key in ("epoch", "position", "seed"):
        if not isinstance(loader.get(key), int) or isinstance(loader.get(key), bool) or loader[key] < 0:
            return f"'loader.{key}' is {_short(loader.get(key))}, expected an int >= 0"
    rng_problem = _rng_problem(state["rng"])
    if rng_problem:
        return f"'rng.{rng_problem}"
    for key in ("components", "component_modules"):
        bad = next((k for k, v in state[key].items() if not isinstance(v, dict if key == "components" else list)), None)
        if bad is not None:
            return f"'{key}.{bad}' is {_kind(state[key][bad])}"
    return None


def _rng_problem(rng: dict[str, Any]) -> str | None:
    """What is wrong with a saved :func:`rng_state` (``"name' ..."``), or None: each part is
    restored into a throwaway generator, so a state that loads here restores for real."""
    for name in ("torch", "python", "numpy"):
        if name not in rng:
            return f"{name}' is missing"
    try:
        torch.Generator().set_state(rng["torch"])
    except (TypeError, RuntimeError, ValueError):
        return f"torch' is not a torch generator state ({_kind(rng['torch'])})"
    try:
        set_python_rng_state(rng["python"], random.Random())
    except (TypeError, ValueError, OverflowError):
        return "python' is not a Python random state"
    try:
        name, keys, pos, has_gauss, cached = rng["numpy"]
        np.random.RandomState().set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    except (TypeError, ValueError, AttributeError, OverflowError):
        return "numpy' is not a NumPy random state"
    if "cuda" in rng and (not isinstance(rng["cuda"], list) or any(not isinstance(t, torch.Tensor) for t in rng["cuda"])):
        return "cuda' is not a list of CUDA generator states"
    return None


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
