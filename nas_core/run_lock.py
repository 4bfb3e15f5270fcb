"""One writer per run folder: a lock file naming the process that writes there.

``nas train``, ``search``, ``export``, ``rank`` and ``run`` write into ``run_dir`` (checkpoint,
metrics, metadata, results). Two of them on the same folder at once would interleave metrics
and leave metadata of one run beside the checkpoint of another, so each holds
``run_dir/.nas.lock`` while it works; a second one is refused with one line naming the first.
Reading commands (``nas config``, ``list``, ``plugins``) take no lock.

How it holds: the lock file is opened and ``flock``-ed (exclusive, non-blocking), and holds the
owner's pid, host, command and start time as JSON. The kernel drops an ``flock`` when its
process dies, however it dies, so a lock left by a killed run never blocks the next one: the
file is still there, but nobody holds it, and the next command takes it over with a warning
naming the previous owner. As a second guard (file systems where ``flock`` is a no-op), a lock
whose owner is a live process on this host is refused even when it could be ``flock``-ed.
On release the file is removed.

Only the main process of a ``torchrun`` job (``RANK`` 0 or unset) takes the lock: it is the
only one that writes. A process that already holds a folder's lock may take it again (``nas
run`` runs train, search and export under one lock).

Before locking, the folder is checked (:func:`prepare_run_dir`): it must not be a file, sit
below a file, or be unwritable; a folder created only for the lock is removed again when the
command leaves nothing in it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

from nas_core.errors import NasError

LOCK_NAME = ".nas.lock"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (any user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is someone else's
        return True
    except (OverflowError, OSError):
        return False
    return True


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc``), to tell a reused pid
    from the original owner; None where ``/proc`` is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _owner(command: str) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "process_start": process_start(os.getpid()),
    }


def _describe(owner: dict[str, Any]) -> str:
    return f"nas {owner.get('command', '?')} (pid {owner.get('pid', '?')} on host {owner.get('host', '?')}, since {owner.get('started', '?')})"


def _owner_running_here(owner: dict[str, Any]) -> bool:
    """The recorded owner is a live process on this host (and not this process)."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or owner.get("host") != socket.gethostname() or pid == os.getpid():
        return False
    if not pid_alive(pid):
        return False
    recorded, actual = owner.get("process_start"), process_start(pid)
    return recorded is None or actual is None or recorded == actual


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


# ---------------------------------------------------------------------------- folder checks


def check_output_dir(path: str | Path, what: str) -> None:
    """Refuse, in one line, a folder that cannot be created or written: one that is a file, or
    sits below a file. ``what`` names it for the message (``run_dir``, ``--out``)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NasError(f"{what} {path}: is a file, not a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NasError(f"{what} {path}: cannot be created, {parent} is a file")
            break


def prepare_run_dir(path: str | Path, what: str = "run_dir") -> list[Path]:
    """Check and create ``path``; returns the folders it created (innermost last)."""
    path = Path(path)
    check_output_dir(path, what)
    created = [p for p in (*reversed(path.parents), path) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NasError(f"{what} {path}: cannot be created ({_reason(exc)})") from None
    return created


# ---------------------------------------------------------------------------- the lock

_held: dict[Path, int] = {}
"""Folders this process holds, with how many nested holders."""


class RunDirLock:
    """The lock on one run folder (see the module docstring). Use :func:`locked_run_dir`."""

    def __init__(self, run_dir: str | Path, command: str):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.command = command
        self._fd: int | None = None
        self._created: list[Path] = []

    def acquire(self) -> None:
        self._created = prepare_run_dir(self.run_dir)
        try:
            self._fd = self._open_and_lock()
        except BaseException:
            self._remove_created()
            raise

    def _open_and_lock(self) -> int:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise NasError(f"run_dir {self.run_dir}: not writable ({_reason(exc)})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                owner = self._read_owner(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise NasError(self._busy(owner)) from None
                raise NasError(f"run_dir {self.run_dir}: cannot lock {self.path} ({_reason(exc)})") from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:  # the previous owner removed it between our open and our lock
                os.close(fd)
                continue
            previous = self._read(fd)
            if previous and _owner_running_here(previous):  # flock may be a no-op on this file system
                os.close(fd)
                raise NasError(self._busy(previous))
            if previous:
                warnings.warn(
                    f"run_dir {self.run_dir}: taking over the lock left by {_describe(previous)}, which is no longer running",
                    stacklevel=3,
                )
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(_owner(self.command)) + "\n").encode(), 0)
            return fd

    def _busy(self, owner: dict[str, Any]) -> str:
        return (
            f"run_dir {self.run_dir}: in use by {_describe(owner)}; wait for it to finish or choose another run_dir "
            f"(lock file {self.path})"
        )

    def _read_owner(self, fd: int, patience: float = 2.0) -> dict[str, Any]:
        """The holder's record; a holder that has just locked may not have written it yet."""
        deadline = time.monotonic() + patience
        while True:
            owner = self._read(fd)
            if owner.get("pid") is not None or time.monotonic() > deadline:
                return owner
            time.sleep(0.05)

    @staticmethod
    def _read(fd: int) -> dict[str, Any]:
        try:
            data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (ValueError, UnicodeDecodeError, OSError):
            return {}
        return data if isinstance(data, dict) else {}

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        self._remove_created()

    def _remove_created(self) -> None:
        """Folders made only for the lock go again when the command left nothing in them."""
        for folder in reversed(self._created):
            try:
                folder.rmdir()
            except OSError:
                break


def is_main_process() -> bool:
    """Rank 0 of a ``torchrun`` job, or a plain process: the one that writes the run folder."""
    return os.environ.get("RANK", "0") in ("", "0")


@contextlib.contextmanager
def locked_run_dir(run_dir: str | Path, command: str) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block (nested holders in one process share it)."""
    if not is_main_process():
        yield
        return
    key = Path(run_dir).absolute()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    lock = RunDirLock(run_dir, command)
    lock.acquire()
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        lock.release()


__all__ = ["LOCK_NAME", "RunDirLock", "check_output_dir", "locked_run_dir", "pid_alive", "prepare_run_dir"]
