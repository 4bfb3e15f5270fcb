"""One writer per run folder, and nothing left behind by a killed one (issue 16)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from nas_core.atomic_file import remove_stale_temporaries
from nas_core.checkpoint import save_atomic
from nas_core.errors import NasError
from nas_core.run_lock import LOCK_NAME, RunDirLock, locked_run_dir, pid_alive
from nas_test_helpers import REPO, tiny_overrides

BASE = str(REPO / "tests" / "base.yaml")  # the tests' plain SPOS config (not the main job's recipe)


def dead_pid() -> int:
    """The pid of a process that has finished (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def test_a_held_lock_refuses_a_second_holder_naming_the_first_and_is_removed_on_release(tmp_path):
    first = RunDirLock(tmp_path / "run", "train")
    first.acquire()
    owner = json.loads((tmp_path / "run" / LOCK_NAME).read_text())
    assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname() and owner["command"] == "train"
    with pytest.raises(NasError, match=rf"in use by nas train \(pid {os.getpid()} on host {socket.gethostname()}, since .*\); wait for it"):
        RunDirLock(tmp_path / "run", "search").acquire()
    first.release()
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    second = RunDirLock(tmp_path / "run", "search")
    second.acquire()
    second.release()


def test_the_same_process_may_nest_holders(tmp_path):
    with locked_run_dir(tmp_path, "run"):
        with locked_run_dir(tmp_path, "train"):  # nas run: train, search, export under one lock
            assert json.loads((tmp_path / LOCK_NAME).read_text())["command"] == "run"
        assert (tmp_path / LOCK_NAME).exists()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_warning(tmp_path):
    pid = dead_pid()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "command": "train", "started": "then"}))
    lock = RunDirLock(tmp_path, "train")
    with pytest.warns(UserWarning, match=rf"taking over the lock left by nas train \(pid {pid} on host .*\), which is no longer running"):
        lock.acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()


def test_a_lock_naming_a_live_process_here_is_refused_even_without_flock(tmp_path):
    """The second guard, for file systems where flock does nothing."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "command": "train"}))
        with pytest.raises(NasError, match=f"in use by nas train \\(pid {sleeper.pid} "):
            RunDirLock(tmp_path, "train").acquire()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_folders_made_only_for_the_lock_go_again(tmp_path):
    lock = RunDirLock(tmp_path / "a" / "b" / "run", "search")
    lock.acquire()
    assert (tmp_path / "a" / "b" / "run" / LOCK_NAME).exists()
    lock.release()
    assert list(tmp_path.iterdir()) == []


def test_torchrun_ranks_other_than_0_take_no_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with locked_run_dir(tmp_path / "run", "train"):
        assert not (tmp_path / "run").exists()


def test_killing_a_checkpoint_write_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    target = tmp_path / "checkpoint.pt"
    save_atomic({"step": 1}, target)
    good = target.read_bytes()
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time, torch
            from nas_core import checkpoint

            def stuck(obj, handle):  # a write that is killed half-way
                handle.write(b"half a checkpoint"); handle.flush()
                print("writing", flush=True)
                time.sleep(120)

            torch.save = stuck
            checkpoint.save_atomic({{"step": 2}}, {str(target)!r})
        """)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    finally:
        writer.kill()
    stale = tmp_path / f".checkpoint.pt.tmp{writer.pid}"
    assert stale.read_bytes() == b"half a checkpoint" and target.read_bytes() == good  # the old one is intact
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        in_progress = tmp_path / f".checkpoint.pt.tmp{live.pid}"  # a live writer's file is not touched
        in_progress.write_bytes(b"busy")
        save_atomic({"step": 3}, target)
        assert not stale.exists() and in_progress.exists()
        assert torch.load(target, weights_only=True) == {"step": 3}
        assert remove_stale_temporaries(target) == []
    finally:
        live.kill()
        live.wait()


def test_two_nas_train_on_one_run_dir_exactly_one_runs_and_a_killed_ones_lock_does_not_block(tmp_path, shared_data):
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # long enough that the first is still training when the second asks (it is killed below)
    args = [sys.executable, "-m", "nas_core.cli", "train", BASE,
            *tiny_overrides(run_dir, "train.max_steps=5000", "data.train_subset=20000", "data.val_subset=200")]
    both = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    try:
        deadline = time.monotonic() + 600
        while all(p.poll() is None for p in both) and time.monotonic() < deadline:
            time.sleep(0.2)
        refused = next(p for p in both if p.poll() is not None)
        running = next(p for p in both if p is not refused)
        err = refused.stderr.read()
        assert refused.returncode == 2, err
        assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err
        assert err.startswith(f"error: run_dir {run_dir}: in use by nas train (pid {running.pid} on host {socket.gethostname()}")
        assert running.poll() is None  # the other one is training
        running.send_signal(signal.SIGKILL)
        running.wait()
    finally:
        for p in both:
            p.kill()
            p.wait()
    assert (run_dir / LOCK_NAME).exists()  # the killed process could not release it
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)  # in case it saved an epoch before the kill: start afresh
    proc = subprocess.run(
        [sys.executable, "-m", "nas_core.cli", "train", BASE, *tiny_overrides(run_dir, "train.max_steps=2", "data.train_subset=640", "data.val_subset=200")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"warning: run_dir {run_dir}: taking over the lock left by nas train (pid {running.pid} on host" in proc.stderr
    assert (run_dir / "checkpoint.pt").exists() and not (run_dir / LOCK_NAME).exists()
