"""Restoring a trained supernet and its components from a checkpoint into a run.

One path for everything that reads a checkpoint back: ``nas search``, ``nas export`` and
``nas rank`` (:func:`load_trained_supernet`) and the trainer's ``--resume``, which restores
the optimiser, scheduler, data position and random state on top of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas_core.checkpoint import read_supernet_checkpoint
from nas_core.errors import CheckpointError
from nas_core.run import Run


def read_for_run(run: Run, path: str | Path) -> dict[str, Any]:
    """Read a supernet checkpoint of the run's space onto the run's device."""
    return read_supernet_checkpoint(path, space=run.config.space.name, map_location=run.device)


def restore_supernet_and_components(run: Run, state: dict[str, Any], path: str | Path) -> None:
    """Load supernet weights and every training component's state (and modules)."""
    try:
        run.supernet.load_state_dict(state["supernet"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit this config's supernet ({first[:200]}); same space options?") from None
    for slot, component in run.components().items():
        try:
            component.load_state_dict(state.get("components", {}).get(slot, {}))
            for module, module_state in zip(component.trainable_modules(), state.get("component_modules", {}).get(slot, [])):
                module.load_state_dict(module_state)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise CheckpointError(f"{path}: state of component '{slot}' does not fit ({reason})") from None


def load_trained_supernet(run: Run, path: str | Path) -> dict[str, Any]:
    """A trained supernet (and component state) from a checkpoint, for search, export and rank;
    fires ``nas_checkpoint_load``."""
    state = read_for_run(run, path)
    restore_supernet_and_components(run, state, path)
    run.hooks.checkpoint_load(state)
    return state
