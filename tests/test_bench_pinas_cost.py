"""The Pi-NAS step-cost benchmark's --quick mode writes its ratios and its breakdown."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from nas_test_helpers import REPO

pytest.importorskip("nas_pinas")


def test_quick_mode_writes_positive_finite_ratios(tmp_path, shared_data):
    out = tmp_path / "pinas_step_cost-quick.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_pinas_cost.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"-> {out}" in proc.stdout
    data = json.loads(out.read_text())
    for key in ("ratio_whole_to_necessary", "ratio_whole_to_all_parts"):
        assert math.isfinite(data[key]) and data[key] > 0, (key, data[key])
        assert math.isfinite(data[f"per_pair_{key}"]["median"]) and data[f"per_pair_{key}"]["median"] > 0
    assert data["measured_pairs"] == 3 and len(data["seconds_per_step"]) == 3
    parts = {row["part"]: row for row in data["parts"]}
    assert {"student", "teacher", "optimiser", "data", "views", "sampler", "ema_queue", "teacher_prepare"} <= set(parts)
    assert parts["student"]["calls_per_step"] == 2 and parts["teacher"]["calls_per_step"] == 2
    assert all(row["seconds_per_step"]["median"] >= 0 for row in data["parts"])
    # the whole step is at least its necessary parts' order of magnitude: it runs all of them
    assert data["seconds_per_step"]["whole"]["median"] > 0.3 * data["seconds_per_step"]["necessary_sum"]["median"]
    assert "load_mean" in data["machine"]["load_1min_while_measuring"]
    assert isinstance(data["machine"]["other_processes_while_measuring"], list)
