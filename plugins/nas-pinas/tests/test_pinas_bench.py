"""The Pi-NAS benchmark's --quick mode runs end to end and writes its comparison."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_bench_pinas_quick(tmp_path):
    out = tmp_path / "pinas-quick.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_pinas.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, env={"OMP_NUM_THREADS": "1", **__import__("os").environ})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Kendall" in proc.stdout or "tau" in proc.stdout
    data = json.loads(out.read_text())
    assert set(data["variants"]) == {"spos", "pinas", "pinas-no-crosspath", "pinas-no-negatives"}
    assert {"knn", "linear-probe"} <= set(data["variants"]["pinas"]["ranking"])
    assert data["n_archs"] == len(data["keys"]) == len(set(data["keys"]))
    tau = data["variants"]["pinas"]["ranking"]["knn"]["kendall_tau"]
    assert -1.0 <= tau <= 1.0
