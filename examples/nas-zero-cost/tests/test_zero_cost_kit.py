"""The plugin end to end through the nas-core testing kit, and on real NAS-Bench-Macro data."""

from __future__ import annotations

import pytest
from scipy import stats

from nas_core.api import ConfigError, DataError
from nas_zero_cost import plugin

SEARCHERS = {
    "random": {"name": "random", "num_samples": 5},
    "evolution": {"name": "evolution", "population": 4, "generations": 2},
    "nsga2": {"name": "nsga2", "population": 4, "generations": 2},
}


@pytest.mark.parametrize("searcher", sorted(SEARCHERS))
def test_every_searcher_uses_the_proxy(nas_kit, searcher):
    trained = nas_kit.train({"train": {"max_steps": 2}})
    config = {"run_dir": str(trained.run_dir), "evaluator": {"name": "synflow"}, "search": {"searcher": SEARCHERS[searcher]}}
    result = nas_kit.search(config, plugins=[plugin])
    nas_kit.assert_lifecycle_order(result.recorder)
    assert isinstance(result.run.evaluator, plugin.SynflowEvaluator)
    history = result.search.history
    assert len(history) >= 3
    # the scores the searcher saw are exactly the proxy's scores of those architectures
    space = result.run.space
    fresh = plugin.SynflowEvaluator(result.run.context, plugin.ZeroCostOptions())
    expected = fresh.evaluate(result.run.supernet, [space.decode(c.arch) for c in history])
    assert [c.score for c in history] == pytest.approx(expected)
    assert result.search.best.score == max(c.score for c in history)


def test_enabled_from_the_config_when_installed(nas_kit):
    from importlib.metadata import entry_points

    if "zero_cost" not in {ep.name for ep in entry_points(group="nas_core.plugins")}:
        pytest.skip("nas-zero-cost is not installed (pip install -e examples/nas-zero-cost)")
    trained = nas_kit.train({"train": {"max_steps": 2}})
    result = nas_kit.search({"run_dir": str(trained.run_dir), "plugins": {"enable": ["zero_cost"]}, "evaluator": {"name": "naswot", "batch_size": 8}})
    assert result.run.host.plugins["zero_cost"].distribution == "nas-zero-cost"
    assert result.run.evaluator.metric_name == "naswot"


def test_bad_options_are_one_line_config_errors(nas_kit):
    with pytest.raises(ConfigError, match=r"evaluator\.weights") as excinfo:
        nas_kit.open({"evaluator": {"name": "snip", "weights": "pretrained"}}, plugins=[plugin])
    assert "\n" not in str(excinfo.value)
    with pytest.raises(ConfigError, match=r"evaluator\.batchsize: unknown key"):
        nas_kit.open({"evaluator": {"name": "snip", "batchsize": 8}}, plugins=[plugin])


def test_synflow_ranks_real_nas_bench_macro_networks(nas_kit):
    """Real data: synflow of freshly initialised NAS-Bench-Macro networks (the benchmark's own
    width) against their trained CIFAR-10 accuracy must rank clearly better than chance."""
    from nas_core.api import load_table, sample_distinct

    try:
        table = load_table()
    except DataError as exc:
        pytest.skip(str(exc))
    config = {"space": {"name": "nas-bench-macro"}, "data": {"name": "cifar10", "train_subset": 500, "val_subset": 100}, "evaluator": {"name": "synflow", "batch_size": 4}}
    try:
        run, _ = nas_kit.open(config, plugins=[plugin])
        run.data
    except DataError as exc:
        pytest.skip(str(exc))
    archs = sample_distinct(run.space, 30, seed=1)
    scores = run.evaluator.evaluate(None, archs)  # weights: init -- the supernet is not needed
    truth = [table[run.space.encode(a)].mean_acc for a in archs]
    tau = stats.kendalltau(scores, truth).statistic
    # Margin: the sample (seed 1) and synflow are deterministic, and tau is 0.609 here with
    # ATEN_CPU_CAPABILITY=avx512 and =default alike, 2x the bound. Other samples of 30 give
    # 0.36-0.69 (seeds 1-8), all above 0.3: the bound holds even for a different draw.
    print(f"[margin] synflow Kendall tau: observed {tau:.3g}, bound 0.3")
    assert tau > 0.3, f"synflow Kendall tau {tau:.3f} on 30 NAS-Bench-Macro networks"
