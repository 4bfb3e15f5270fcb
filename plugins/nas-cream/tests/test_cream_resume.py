"""Resume after the warm-up continues exactly: board, meta network, its optimiser, supernet."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nas_core import testing as commands
from nas_core.api import data_root, load_checkpoint

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cream-macro.yaml"


def assert_same_training_state(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    for key, value in a["supernet"].items():
        assert torch.equal(value, b["supernet"][key]), f"supernet {key} differs"
    ta, tb = a["components"]["teacher"], b["components"]["teacher"]
    assert len(ta["board"]) > 0 and ta["meta_updates"] > 0
    assert ta["meta_updates"] == tb["meta_updates"]
    assert [e["arch"] for e in ta["board"]] == [e["arch"] for e in tb["board"]]
    assert ta["board_history"] == tb["board_history"]
    for ea, eb in zip(ta["board"], tb["board"]):
        assert (ea["acc"], ea["flops"], ea["step"]) == (eb["acc"], eb["flops"], eb["step"])
        assert torch.equal(ea["images"], eb["images"]) and torch.equal(ea["probs"], eb["probs"])
    for key, value in ta["meta"].items():
        assert torch.equal(value, tb["meta"][key]), f"meta {key} differs"
    for index, state in ta["meta_optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, tb["meta_optimizer"]["state"][index][key])
    for key, value in a["optimizer"]["state"].items():
        assert torch.equal(value["momentum_buffer"], b["optimizer"]["state"][key]["momentum_buffer"])


def test_stop_after_warm_up_and_resume_equals_uninterrupted(nas_kit, cream_config):
    cream_config["train"]["max_steps"] = 14
    cream_config["teacher"]["board_history_every"] = 2
    full, _ = nas_kit.open(cream_config)
    commands.train(full)

    stopped_dir = str(nas_kit.root / "stopped")
    cream_config["train"]["max_steps"] = 8  # past the warm-up (4) and one meta update (step 7)
    first, _ = nas_kit.open({**cream_config, "run_dir": stopped_dir})
    commands.train(first)
    halfway = load_checkpoint(Path(stopped_dir) / "checkpoint.pt")
    assert halfway["step"] == 8 and len(halfway["components"]["teacher"]["board"]) > 0
    assert halfway["components"]["teacher"]["meta_updates"] == 1

    cream_config["train"]["max_steps"] = 14
    resumed, _ = nas_kit.open({**cream_config, "run_dir": stopped_dir})
    commands.train(resumed, resume=True)
    a = load_checkpoint(full.run_dir / "checkpoint.pt")
    b = load_checkpoint(Path(stopped_dir) / "checkpoint.pt")
    assert b["components"]["teacher"]["meta_updates"] == 3
    assert [h["step"] for h in b["components"]["teacher"]["board_history"]] == [6, 8, 10, 12, 14]  # 6 and 8 from before the stop
    assert_same_training_state(a, b)


def _train(run_dir: Path, *extra: str) -> subprocess.Popen:
    overrides = [
        f"run_dir={run_dir}", "data.train_subset=640", "data.val_subset=200", "train.batch_size=32",
        "train.max_steps=16", "train.checkpoint_every_steps=2", "train.progress=false", "train.tensorboard=false",
        "cream.warmup_steps=4", "teacher.meta_update_every=3", "teacher.board_size=5", "export.onnx=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NAS_DATA": str(data_root())}
    return subprocess.Popen([sys.executable, "-m", "nas_core.cli", "train", str(CONFIG), *overrides, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_equals_uninterrupted(tmp_path):
    """Real CIFAR-10, the real CLI, a real SIGKILL after the warm-up."""
    full = _train(tmp_path / "full")
    killed = _train(tmp_path / "killed")
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 300
    while time.time() < deadline:
        if checkpoint.is_file():
            try:
                step = int(torch.load(checkpoint, weights_only=True)["step"])
            except Exception:  # replaced while reading: try again
                step = 0
            if step >= 8:
                break
        assert killed.poll() is None, killed.stderr.read()
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    at_kill = load_checkpoint(checkpoint)
    assert 8 <= at_kill["step"] < 16 and len(at_kill["components"]["teacher"]["board"]) > 0

    resumed = _train(tmp_path / "killed", "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    out, err = full.communicate(timeout=300)
    assert full.returncode == 0, err
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = load_checkpoint(checkpoint)
    assert a["step"] == b["step"] == 16
    assert_same_training_state(a, b)
