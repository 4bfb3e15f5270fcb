"""The example plugin through the nas-core testing kit: the evaluator contract, then a search."""

from __future__ import annotations

import math

import pytest
import torch

import nas_grad_norm
from nas_core.api import ConfigError

ARCHS = [(0, 0, 0), (1, 2, 0), (2, 2, 2), (2, 1, 1)]


def test_scores_follow_the_evaluator_contract(nas_kit):
    run, _ = nas_kit.open({"evaluator": {"name": "grad-norm", "batch_size": 8}}, plugins=[nas_grad_norm])
    evaluator, supernet = run.evaluator, run.supernet
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    together = evaluator.evaluate(supernet, ARCHS)
    one_by_one = [evaluator.evaluate(supernet, [a])[0] for a in reversed(ARCHS)][::-1]
    assert together == one_by_one  # a score depends on the architecture alone
    assert all(math.isfinite(s) and s > 0 for s in together)
    assert len(set(together)) == len(ARCHS)
    assert all(torch.equal(before[k], v) for k, v in supernet.state_dict().items()), "scoring changed the supernet"


def test_the_norm_is_the_sum_of_per_parameter_gradient_norms(tiny_supernet, tiny_data):
    images, labels = tiny_data.train.images[:8].float() / 255, tiny_data.train.labels[:8]
    network = tiny_supernet.extract((1, 2, 1))
    score = nas_grad_norm.grad_norm(network, images, labels)
    grads = torch.autograd.grad(torch.nn.functional.cross_entropy(network(images), labels), list(network.parameters()), allow_unused=True)
    assert score == pytest.approx(sum(float(g.norm()) for g in grads if g is not None), rel=1e-5)


def test_a_search_uses_it(nas_kit):
    trained = nas_kit.train({"train": {"max_steps": 2}})
    result = nas_kit.search({"run_dir": str(trained.run_dir), "evaluator": {"name": "grad-norm", "batch_size": 8}}, plugins=[nas_grad_norm])
    nas_kit.assert_lifecycle_order(result.recorder)
    assert result.run.evaluator.metric_name == "grad_norm"
    assert result.search.best.score == max(c.score for c in result.search.history)


def test_a_typo_is_a_one_line_config_error(nas_kit):
    with pytest.raises(ConfigError, match=r"evaluator\.batchsize: unknown key") as excinfo:
        nas_kit.open({"evaluator": {"name": "grad-norm", "batchsize": 8}}, plugins=[nas_grad_norm])
    assert "\n" not in str(excinfo.value)


def test_reads_the_trained_supernet_only_with_its_weights(nas_kit):
    assert nas_kit.build("evaluator", {"name": "grad-norm"}, plugins=[nas_grad_norm]).reads_supernet is False
    assert nas_kit.build("evaluator", {"name": "grad-norm", "weights": "supernet"}, plugins=[nas_grad_norm]).reads_supernet is True
