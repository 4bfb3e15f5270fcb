"""Search, export and rank on a trained tiny supernet (real CIFAR-10)."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from scipy import stats

from nas_core.config import ConstraintsConfig
from nas_core.errors import ArchitectureError
from nas_core.export import extract_subnet, load_subnet
from nas_core.restore import load_trained_supernet
from nas_core.ranking import paired_difference, rank_statistics, resample_counts, resampled_rhos, resampled_taus, sample_distinct, top_k_overlap
from nas_core.search_result import SearchProblem
from nas_core.spaces.nas_bench_macro import nas_bench_macro
from nas_test_helpers import REPO, nas, tiny_overrides, tiny_run

QUICKSTART = str(REPO / "tests" / "base.yaml")


def test_evolution_respects_flops_constraint(trained_tiny):
    limit = 4.0e6
    proc = nas("search", QUICKSTART, *tiny_overrides(trained_tiny, f"search.constraints.max_flops={limit}",
               "search.searcher.population=6", "search.searcher.generations=3"), check=True)
    result = json.loads((trained_tiny / "search.json").read_text())
    assert result["best"]["macs"] <= limit
    assert len(result["history"]) >= 6
    assert result["best"]["score"] == max(c["score"] for c in result["history"] if c["macs"] <= limit)
    assert result["best"]["arch"] in proc.stdout
    meta = json.loads((trained_tiny / "metadata-search.json").read_text())
    assert meta["command"] == "search" and meta["config"]["search"]["constraints"]["max_flops"] == limit


def test_nsga2_front_is_non_dominated(trained_tiny, tmp_path):
    run_dir = tmp_path / "nsga"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").symlink_to(trained_tiny / "checkpoint.pt")
    nas("search", QUICKSTART, *tiny_overrides(run_dir, "search.searcher.name=nsga2", "search.searcher.population=6",
        "search.searcher.generations=2"), check=True)
    result = json.loads((run_dir / "search.json").read_text())
    front = result["pareto"]
    assert front and (run_dir / "pareto.png").is_file()
    for a in front:
        for b in front:
            dominates = b["score"] >= a["score"] and b["macs"] <= a["macs"] and b["params"] <= a["params"] and b != a
            assert not (dominates and (b["score"], b["macs"], b["params"]) != (a["score"], a["macs"], a["params"]))


def test_impossible_constraint_is_one_clear_error(trained_tiny):
    proc = nas("search", QUICKSTART, *tiny_overrides(trained_tiny, "search.constraints.max_flops=1000"))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: search.constraints: impossible: max_flops 1000 is below the smallest")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_export_inherits_weights_and_onnx_matches(trained_tiny, tmp_path):
    out = tmp_path / "export"
    nas("export", QUICKSTART, *tiny_overrides(trained_tiny, "export.onnx=true"), "--arch", "12021201", "--out", str(out), check=True)
    summary = json.loads((out / "arch.json").read_text())
    print(f"[margin] export's own ONNX check: observed {summary['onnx_max_abs_diff']:.3g}, bound 0.0001")
    assert summary["arch"] == "12021201" and summary["onnx_max_abs_diff"] < 1e-4
    run = tiny_run(trained_tiny)
    subnet, arch = load_subnet(out / "subnet.pt")
    load_trained_supernet(run, trained_tiny / "checkpoint.pt")
    expected = extract_subnet(run, arch)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        print(f"[margin] loaded vs extracted subnet: observed {float((subnet.eval()(x) - expected(x)).abs().max()):.3g}, bound 1e-06")
        assert torch.allclose(subnet.eval()(x), expected(x), atol=1e-6)
        session = ort.InferenceSession(str(out / "subnet.onnx"), providers=["CPUExecutionProvider"])
        (onnx_out,) = session.run(None, {"images": x.numpy()})
        print(f"[margin] onnxruntime vs torch: observed {float(np.abs(onnx_out - subnet(x).numpy()).max()):.3g}, bound 0.0001")
        assert np.abs(onnx_out - subnet(x).numpy()).max() < 1e-4
    # the exported BN statistics were recalibrated for this path, not the supernet's shared ones
    sup = torch.load(trained_tiny / "checkpoint.pt", weights_only=True)["supernet"]
    assert not torch.equal(subnet.state_dict()["stem.0.1.running_mean"], sup["stem.0.1.running_mean"])


def test_rank_reports_tau_with_ci_groups_and_plot(trained_tiny):
    proc = nas("rank", QUICKSTART, *tiny_overrides(trained_tiny, "rank.num_archs=24", "rank.bootstrap=200"), check=True)
    report = json.loads((trained_tiny / "rank.json").read_text())
    assert report["n"] == 24 and len({a["arch"] for a in report["archs"]}) == 24
    lo, hi = report["kendall_tau_ci95"]
    assert -1 <= lo <= hi <= 1
    assert (trained_tiny / "rank.png").stat().st_size > 1000
    assert "Kendall tau" in proc.stdout


def test_rank_statistics_known_answers():
    truth = np.arange(50, dtype=float)
    groups = [i % 3 for i in range(50)]
    perfect = rank_statistics(truth * 2 + 1, truth, groups, resamples=200)
    assert perfect["kendall_tau"] == pytest.approx(1.0) and perfect["spearman_rho"] == pytest.approx(1.0)
    assert perfect["group_tau_weighted_mean"] == pytest.approx(1.0)
    assert perfect["top_k_overlap"]["10"] == 1.0
    reverse = rank_statistics(-truth, truth, groups, resamples=200)
    assert reverse["kendall_tau"] == pytest.approx(-1.0)
    noisy = rank_statistics(truth + np.random.default_rng(0).normal(0, 15, 50), truth, groups, resamples=500)
    lo, hi = noisy["kendall_tau_ci95"]
    print(f"[margin] bootstrap CI width: observed {hi - lo:.3g}, bound 0.05")
    assert lo < noisy["kendall_tau"] < hi and hi - lo > 0.05
    assert top_k_overlap(np.array([3.0, 2, 1, 0]), np.array([0.0, 1, 2, 3]), 2) == 0.0


def test_resampled_statistics_equal_scipy_on_every_resample_with_ties():
    """The bootstrap's batched tau-b and Spearman (from draw counts) equal scipy's on each
    resample, copies of a network and ties in either score included."""
    rng = np.random.default_rng(0)
    truth = rng.normal(size=40).round(1)
    scores = (truth + rng.normal(size=40)).round(0)
    draws = rng.integers(0, 40, (30, 40))
    draws[0] = 5  # one network drawn 40 times: no untied pair, NaN like scipy
    counts = resample_counts(draws, 40)
    assert counts.shape == (30, 40) and (counts.sum(axis=1) == 40).all()
    taus, rhos = resampled_taus(scores, truth, counts), resampled_rhos(scores, truth, counts)
    assert np.isnan(taus[0]) and np.isnan(rhos[0])
    infinite = np.where(scores > 1, np.inf, scores)  # an evaluator's inf scores tie with each other
    taus_inf, rhos_inf = resampled_taus(infinite, truth, counts), resampled_rhos(infinite, truth, counts)
    for r, idx in enumerate(draws[1:], start=1):
        assert taus[r] == pytest.approx(stats.kendalltau(scores[idx], truth[idx]).statistic, abs=1e-12)
        assert rhos[r] == pytest.approx(stats.spearmanr(scores[idx], truth[idx]).statistic, abs=1e-12)
        assert taus_inf[r] == pytest.approx(stats.kendalltau(infinite[idx], truth[idx]).statistic, abs=1e-12)
        assert rhos_inf[r] == pytest.approx(stats.spearmanr(infinite[idx], truth[idx]).statistic, abs=1e-12)
    with_nan = np.where(np.arange(40) == 3, np.nan, scores)
    assert np.isnan(resampled_taus(with_nan, truth, counts)).all() and np.isnan(resampled_rhos(with_nan, truth, counts)).all()


def test_paired_difference_batched_equals_one_scipy_call_per_resample():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=60).round(1)
    a, b = truth + rng.normal(size=60), (truth + 3 * rng.normal(size=60)).round(0)
    batched = paired_difference(a, b, truth, resamples=300, seed=4)
    one_by_one = paired_difference(a, b, truth, statistic=lambda x, t: stats.kendalltau(x, t).statistic, resamples=300, seed=4)
    assert batched["difference"] == pytest.approx(one_by_one["difference"], abs=1e-12)
    assert batched["ci95"] == pytest.approx(one_by_one["ci95"], abs=1e-12)
    assert batched["ci95"][0] < batched["difference"] < batched["ci95"][1]
    constant = paired_difference(np.ones(60), b, truth, resamples=50)  # tau undefined on every resample: NaN, not a crash
    assert np.isnan(constant["difference"]) and np.isnan(constant["ci95"]).all()


def test_large_samples_score_one_resample_at_a_time_with_the_same_draws(monkeypatch):
    """Above BATCHED_LIMIT networks the bootstrap calls scipy once per resample (cheaper than
    n x n pair matrices); the draws, and so the intervals, are the same; BATCH_CELLS splits the
    resamples into batches (bounded memory) without changing them."""
    from nas_core import ranking

    rng = np.random.default_rng(2)
    truth = rng.normal(size=60).round(1)
    a, b = truth + rng.normal(size=60), truth + 2 * rng.normal(size=60)
    whole = paired_difference(a, b, truth, resamples=200, seed=1)
    monkeypatch.setattr(ranking, "BATCH_CELLS", 600)  # 10 resamples per batch
    batched = rank_statistics(a, truth, [0] * 60, resamples=200, seed=1), paired_difference(a, b, truth, resamples=200, seed=1)
    assert batched[1]["ci95"] == pytest.approx(whole["ci95"], abs=1e-12)
    monkeypatch.setattr(ranking, "BATCHED_LIMIT", 10)
    one_by_one = rank_statistics(a, truth, [0] * 60, resamples=200, seed=1), paired_difference(a, b, truth, resamples=200, seed=1)
    for key in ("kendall_tau_ci95", "spearman_rho_ci95"):
        assert one_by_one[0][key] == pytest.approx(batched[0][key], abs=1e-12)
    assert one_by_one[1]["ci95"] == pytest.approx(batched[1]["ci95"], abs=1e-12)


def test_sample_distinct_is_seeded_and_canonical():
    space = nas_bench_macro()
    a, b = sample_distinct(space, 200, 5), sample_distinct(space, 200, 5)
    assert a == b and len(set(a)) == 200
    assert all(space.canonical(x) == x for x in a)
    assert sample_distinct(space, 200, 6) != a


def test_search_problem_rejects_impossible_bounds():
    space = nas_bench_macro()
    with pytest.raises(ArchitectureError, match="min_flops .* is above the largest"):
        SearchProblem(space, lambda archs: [0.0] * len(archs), ConstraintsConfig(min_flops=1e12), 0)
