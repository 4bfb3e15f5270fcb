"""The benchmark's --quick mode runs end to end and writes its comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_scarlet.py"


def test_bench_scarlet_quick(tmp_path: Path):
    out = tmp_path / "scarlet-quick.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # like every other subprocess the tests start
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--out", str(out)], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "delta tau spos+les - spos" in proc.stdout
    data = json.loads(out.read_text())
    assert set(data["variants"]) == {"spos", "spos+les", "scarlet"}
    steps = {name: v["steps"] * v["paths_per_step"] for name, v in data["variants"].items()}
    assert len(set(steps.values())) == 1  # same budget of path passes
    assert data["variants"]["scarlet"]["paths_per_step"] == 3
    assert len(data["per_arch"]["archs"]) == len(set(data["per_arch"]["archs"])) == data["settings"]["num_archs"]
    assert out.with_suffix(".png").is_file()
