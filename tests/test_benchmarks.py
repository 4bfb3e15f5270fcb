"""Every benchmark script runs in its --quick mode and writes its result file."""

import json
import os
import subprocess
import sys
import time

import pytest

from nas_test_helpers import REPO

BENCHMARKS = sorted(p.name for p in (REPO / "benchmarks").glob("bench_*.py"))
NEEDS = {"bench_finetune.py": "nas_downstream"}
"""Scripts that need an optional package (the OpenMMLab bridge: setup.sh --no-openmmlab skips it)."""
DEDICATED = {
    "bench_pinas.py": "plugins/nas-pinas/tests/test_pinas_bench.py",
    "bench_pinas_cost.py": "tests/test_bench_pinas_cost.py",
    "bench_scarlet.py": "plugins/nas-scarlet/tests/test_scarlet_bench.py",
    "bench_search_gap.py": "tests/test_bench_search_gap.py",
}
"""Scripts whose --quick mode a test of their own runs and checks in detail: not run twice."""


def test_every_dedicated_benchmark_test_runs_its_script_in_quick_mode():
    for script, test_file in DEDICATED.items():
        assert script in BENCHMARKS, f"{script} is no longer a benchmark"
        text = (REPO / test_file).read_text()
        assert script in text and '"--quick"' in text, f"{test_file} does not run {script} --quick"


@pytest.mark.parametrize("script", [name for name in BENCHMARKS if name not in DEDICATED])
def test_benchmark_quick_mode(script, shared_data):
    if script in NEEDS:
        pytest.importorskip(NEEDS[script], reason=f"{script} needs {NEEDS[script]}, which this environment does not have")
    started = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--quick"], capture_output=True, text=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "-> " in proc.stdout and "results" in proc.stdout
    path = proc.stdout.rsplit("-> ", 1)[1].split()[0]
    assert "quick" in os.path.basename(path) and os.path.getmtime(path) >= started - 1
    data = json.loads(open(path).read())
    assert data  # a JSON result was written by this run
