"""The search-gap benchmark: every network scored once, each search judged by its own evaluator's
argmax (label-free) and by ground truth; the score cache makes a rerun score nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from nas_test_helpers import REPO

SCRIPT = str(REPO / "benchmarks" / "bench_search_gap.py")


def run_quick(tmp_path, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, SCRIPT, "--quick", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "gap.json"), *extra],
                          capture_output=True, text=True, timeout=900, env=env)


def test_quick_mode_judges_every_search_against_the_evaluators_own_argmax(tmp_path, shared_data):
    proc = run_quick(tmp_path, "--evaluator-seeds", "0", "--budgets", "4x2,32x16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"-> {tmp_path / 'gap.json'}" in proc.stdout
    data = json.loads((tmp_path / "gap.json").read_text())
    seed = data["per_evaluator_seed"]["0"]
    assert seed["networks"] == 3969  # every distinct NAS-Bench-Macro network was scored
    scores = json.loads((tmp_path / "runs" / "scores-s0.json").read_text())
    assert len(scores) == 3969
    (limit,) = seed["limits"].values()
    assert limit["feasible"] < 3969 and limit["argmax"] in scores
    top = max(scores[k] for k in scores if k in set(r["pick"] for r in limit["searches"]) | {limit["argmax"]})
    assert scores[limit["argmax"]] == top  # no pick scores above the feasible argmax
    for row in limit["searches"]:
        assert row["is_argmax"] == (scores[row["pick"]] == scores[limit["argmax"]])
        assert 0 <= row["gt_percentile"] <= 100 and 0 < row["score_percentile"] <= 100
    small, large = data["budgets"]
    assert small["mean_evaluations"] < large["mean_evaluations"]
    # the larger budget finds the structural score's top every time: it is the label-free choice
    assert large["argmax_found"] == large["searches"] == 2
    assert data["chosen_budget"] in ([4, 2], [32, 16])
    assert data["chosen_budget"] == ([4, 2] if small["argmax_found"] == small["searches"] else [32, 16])

    again = run_quick(tmp_path, "--evaluator-seeds", "0", "--budgets", "4x2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "scored" not in again.stderr  # the cache held every score


def test_bad_input_is_one_error_line(tmp_path, shared_data):
    """A malformed budget, a missing config, and an evaluator that reads a trained supernet
    (scoring all 3,969 networks with one is not what this tool is for) each end in one line."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = ["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "gap.json")]
    for args, expected in ((["--quick", "--budgets", "16by8"], "16by8"),
                           (["--quick", "--config", str(tmp_path / "missing.yaml")], "missing.yaml"),
                           (["--config", str(REPO / "tests" / "base.yaml")], "reads a trained supernet")):
        proc = subprocess.run([sys.executable, SCRIPT, *args, *common], capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode != 0 and expected in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert not (tmp_path / "gap.json").exists()
