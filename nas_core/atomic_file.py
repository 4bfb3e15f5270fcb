"""Files written whole or not at all.

A process can be killed mid-write (a stopped session, an out-of-memory kill, a power cut). A
checkpoint, a result or a cached fit that is half written where the next reader looks is worse
than none, so every file the engine keeps goes through :func:`write_atomic`: the bytes go to a
temporary ``.NAME.tmp<pid>`` beside the target, are flushed to disk (``fsync``) and renamed over
the target in one step, so a reader sees the previous file or the new one, never a mixture.
A killed writer leaves its temporary behind; the next write to the same target removes it
(:func:`remove_stale_temporaries`), unless that writer still runs.

This module imports neither torch nor pydantic, so JSON writers can use it cheaply; the callers
say how to write (``torch.save`` for checkpoints, :func:`nas_core.checked_json.write_json_atomic`
for JSON).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO, Callable

from nas_core.run_lock import pid_alive


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete ``.NAME.tmp<pid>`` files beside ``path`` whose writer no longer runs (a process
    killed mid-write leaves one); those of live processes are left alone. Returns what went."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.tmp(\d+)")
    removed = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for candidate in siblings:
        match = pattern.fullmatch(candidate.name)
        if match and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
            try:
                candidate.unlink()
                removed.append(candidate)
            except OSError:
                pass
    return removed


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """``write(handle)`` into a temporary file beside ``path``, flushed to disk and renamed over
    ``path`` (its folder is created); stale temporaries of earlier, killed writers are removed
    first. If ``write`` raises, the temporary goes and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
