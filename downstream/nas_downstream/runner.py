"""mmengine's Runner with the one change current torch needs: trusted resume.

``torch.load`` reads with ``weights_only=True`` by default, and the checkpoints mmengine's
Runner writes hold more than tensors (the message hub's history buffers, numpy scalars and
arrays, reached through ``builtins.getattr``), so allow-listing types is not enough to resume.
Full unpickling runs code from the file, so it is granted narrowly:

- ``NASRunner.save_checkpoint`` records the SHA-256 of every checkpoint it writes in
  ``<work_dir>/.nas_checkpoints.json``;
- ``NASRunner.resume`` fully unpickles a file only if it lies inside the run's own
  ``work_dir`` (after resolving symlinks) and its bytes hash to what the run recorded. The
  bytes are read once, checked, and unpickled from memory, so the file cannot change between
  check and load;
- everything else keeps ``weights_only=True``: ``load_from``, ``init_cfg`` pretrained weights,
  the backbone's ``supernet=`` / ``subnet=`` files, and a resume from anywhere else, which
  fails with one clear line instead of running the file's code.

Nothing is changed for the whole process (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is never set).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from mmengine.dist import is_main_process
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

from nas_core.api import CheckpointError

MANIFEST = ".nas_checkpoints.json"
TRUSTED_PREFIX = "nas-trusted-resume://"
_grants: dict[str, str] = {}  # resolved path -> SHA-256, only while NASRunner.resume runs


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_trusted(filename: str, map_location: Any = None) -> Any:
    """CheckpointLoader scheme used only by NASRunner.resume for a granted file."""
    path = filename[len(TRUSTED_PREFIX):]
    digest = _grants.get(path)
    if digest is None:
        raise CheckpointError(f"{path}: full unpickling was not granted for this file (only NASRunner.resume grants it)")
    data = Path(path).read_bytes()
    if _sha256(data) != digest:
        raise CheckpointError(f"{path}: refused to resume: the file changed since this run wrote it (SHA-256 differs)")
    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)


CheckpointLoader.register_scheme(prefixes=TRUSTED_PREFIX, loader=_load_trusted, force=True)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


class NASRunner(Runner):
    """``runner_type = "NASRunner"``: mmengine's Runner with trusted resume (module docstring)."""

    # ------------------------------------------------------------------ manifest

    @property
    def _manifest_path(self) -> Path:
        return Path(self.work_dir) / MANIFEST

    def _read_manifest(self) -> dict[str, str]:
        try:
            data = json.loads(self._manifest_path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def save_checkpoint(self, out_dir: str, filename: str, *args: Any, **kwargs: Any) -> None:
        super().save_checkpoint(out_dir, filename, *args, **kwargs)
        if not is_main_process():
            return
        work_dir = Path(self.work_dir).resolve()
        path = (Path(out_dir) / filename).resolve()
        if not path.is_file() or not _inside(path, work_dir):
            return  # written elsewhere (a custom out_dir): never trusted for full unpickling
        manifest = {k: v for k, v in self._read_manifest().items() if (work_dir / k).is_file()}
        manifest[str(path.relative_to(work_dir))] = _sha256(path.read_bytes())
        tmp = self._manifest_path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(manifest, indent=1))
        tmp.replace(self._manifest_path)

    def trusted_digest(self, filename: str) -> str | None:
        """The recorded SHA-256 if ``filename`` is a checkpoint this run wrote in its work_dir."""
        if "://" in str(filename):
            return None
        work_dir = Path(self.work_dir).resolve()
        path = Path(filename).expanduser().resolve()
        if not path.is_file() or not _inside(path, work_dir):
            return None
        return self._read_manifest().get(str(path.relative_to(work_dir)))

    # ------------------------------------------------------------------ resume

    def resume(self, filename: str, resume_optimizer: bool = True, resume_param_scheduler: bool = True, map_location: Any = "default") -> None:
        digest = self.trusted_digest(filename)
        if digest is None:
            try:
                return super().resume(filename, resume_optimizer, resume_param_scheduler, map_location)
            except Exception as exc:
                if "Weights only load failed" in str(exc):
                    raise CheckpointError(
                        f"{filename}: refused to resume: only checkpoints this run wrote in its work_dir "
                        f"({self.work_dir}) are fully unpickled; this file holds objects other than tensors "
                        "and plain data (it was read with weights_only=True)"
                    ) from None
                raise
        path = str(Path(filename).expanduser().resolve())
        _grants[path] = digest
        try:
            super().resume(TRUSTED_PREFIX + path, resume_optimizer, resume_param_scheduler, map_location)
        finally:
            _grants.pop(path, None)
