"""JSON files on disk: read safely and checked, written atomically.

Ground-truth tables and saved search results come from disk, where they may be truncated,
edited, nested absurdly deep or not JSON at all. :func:`read_checked_json` turns every such
case into one error line naming the file and the first wrong part, instead of a traceback
later on. :func:`write_json_atomic` writes through :mod:`nas_core.atomic_file`, so a reader
never sees half a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from nas_core.atomic_file import write_atomic
from nas_core.errors import NasError


def read_checked_json(path: Path, schema: TypeAdapter | type[BaseModel], what: str, error: type[NasError]) -> Any:
    """``path`` parsed as JSON and validated by ``schema``; anything else raises ``error`` with
    ``"<path>: not <what> (<first problem>)"``."""
    try:
        raw = json.loads(path.read_bytes())
    except (ValueError, RecursionError, OSError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:120]
        raise error(f"{path}: not {what} (cannot read it as JSON: {reason})") from None
    try:
        return schema.validate_python(raw) if isinstance(schema, TypeAdapter) else schema.model_validate(raw)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "<root>"
        raise error(f"{path}: not {what} ({where}: {problem['msg']})") from None


def write_json_atomic(data: Any, path: Path, **dumps: Any) -> Path:
    """``data`` as JSON (``json.dumps(data, indent=1, **dumps)``) in ``path``, through
    :func:`nas_core.atomic_file.write_atomic`: a crash mid-write leaves the previous file intact.
    ``data`` is serialised before anything is written, so unserialisable data leaves no file."""
    payload = json.dumps(data, indent=1, **dumps).encode()
    return write_atomic(path, lambda handle: handle.write(payload))
