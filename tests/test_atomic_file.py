"""Files written whole or not at all: the one atomic writer that checkpoints and JSON share.

The kill-mid-write case (a temporary left behind and removed by the next save) is tested with a
real killed process in test_run_lock.py; here: a failing write keeps the old file, JSON that
cannot be serialised leaves no file, and JSON writes clean up after killed writers too.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nas_core.atomic_file import remove_stale_temporaries, write_atomic
from nas_core.checked_json import write_json_atomic


def test_a_write_that_fails_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = write_atomic(tmp_path / "deep" / "er" / "result.bin", lambda handle: handle.write(b"good"))

    def half_then_fail(handle):
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half_then_fail)
    assert target.read_bytes() == b"good"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.bin"]


def test_json_that_cannot_be_serialised_leaves_no_file(tmp_path):
    target = tmp_path / "scores.json"
    with pytest.raises(TypeError):
        write_json_atomic({"score": object()}, target)
    assert list(tmp_path.iterdir()) == []
    write_json_atomic({"score": 0.5, "when": object()}, target, default=lambda _: "later")
    assert json.loads(target.read_text()) == {"score": 0.5, "when": "later"}


def test_a_json_write_removes_the_temporary_a_killed_writer_left(tmp_path):
    target = tmp_path / "summary.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    stale = tmp_path / f".summary.json.tmp{int(dead.stdout)}"
    stale.write_text('{"half": ')
    unrelated = tmp_path / ".other.json.tmp1"
    unrelated.write_text("not ours")
    write_json_atomic([1, 2], target)
    assert json.loads(target.read_text()) == [1, 2]
    assert not stale.exists() and unrelated.exists()
    assert remove_stale_temporaries(target) == []


def test_the_writer_loads_neither_torch_nor_pydantic():
    """JSON writers (benchmarks, the study's records) use it without paying torch's import."""
    probe = "import sys, nas_core.atomic_file; print('torch' in sys.modules, 'pydantic' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == ["False", "False"]
