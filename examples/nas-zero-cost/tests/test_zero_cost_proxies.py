"""The proxies on the kit's stand-ins: deterministic, side-effect free, sensible orderings."""

from __future__ import annotations

import math

import pytest
import torch

from nas_zero_cost import plugin
from nas_zero_cost.proxies import grad_norm, naswot, snip, synflow

ALL_IDENTITY = (0, 0, 0)
ALL_LARGEST = (2, 2, 2)


@pytest.mark.parametrize("name", sorted(plugin.EVALUATORS))
def test_scores_are_finite_deterministic_and_leave_the_supernet_alone(name, tiny_run):
    evaluator = plugin.EVALUATORS[name](tiny_run.context, plugin.ZeroCostOptions(weights="supernet", batch_size=16))
    supernet = tiny_run.supernet
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    archs = [ALL_IDENTITY, (1, 2, 0), ALL_LARGEST]
    first = evaluator.evaluate(supernet, archs)
    second = evaluator.evaluate(supernet, archs)
    assert first == second
    assert all(math.isfinite(s) for s in first)
    assert len(set(first)) == 3, f"{name} does not tell the architectures apart: {first}"
    after = supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "evaluating changed the supernet"


def test_synflow_grows_with_the_network(tiny_supernet, tiny_data):
    images = tiny_data.train.images[:8].float() / 255
    labels = tiny_data.train.labels[:8]
    scores = [synflow(tiny_supernet.extract(a), images, labels) for a in (ALL_IDENTITY, (1, 1, 1), ALL_LARGEST)]
    assert scores[0] < scores[1] < scores[2]


def test_synflow_is_data_free(tiny_supernet, tiny_data):
    images, labels = tiny_data.train.images[:8].float() / 255, tiny_data.train.labels[:8]
    noise = torch.randn_like(images)
    a = synflow(tiny_supernet.extract((1, 2, 1)), images, labels)
    b = synflow(tiny_supernet.extract((1, 2, 1)), noise, labels.flip(0))
    assert a == pytest.approx(b, rel=1e-12)


def test_data_proxies_depend_on_the_labels(tiny_supernet, tiny_data):
    images, labels = tiny_data.train.images[:16].float() / 255, tiny_data.train.labels[:16]
    shuffled = (labels + 1) % 4
    for proxy in (grad_norm, snip):
        torch.manual_seed(0)
        a = proxy(tiny_supernet.extract((1, 2, 1)), images, labels)
        torch.manual_seed(0)
        b = proxy(tiny_supernet.extract((1, 2, 1)), images, shuffled)
        assert a != pytest.approx(b), proxy.__name__


def test_naswot_is_higher_for_distinct_activation_patterns(tiny_supernet, tiny_data):
    images = tiny_data.train.images[:16].float() / 255
    labels = tiny_data.train.labels[:16]
    varied = naswot(tiny_supernet.extract(ALL_LARGEST), images, labels)
    same = naswot(tiny_supernet.extract(ALL_LARGEST), images[:1].repeat(16, 1, 1, 1), labels)
    assert varied > same  # identical inputs give identical codes: a singular kernel


def test_init_weights_ignore_the_trained_supernet(tiny_run):
    evaluator = plugin.SynflowEvaluator(tiny_run.context, plugin.ZeroCostOptions(weights="init"))
    supernet = tiny_run.supernet
    baseline = evaluator.evaluate(supernet, [(1, 2, 1)])
    with torch.no_grad():
        for p in supernet.parameters():
            p.mul_(3.0)
    assert evaluator.evaluate(supernet, [(1, 2, 1)]) == baseline
    inherited = plugin.SynflowEvaluator(tiny_run.context, plugin.ZeroCostOptions(weights="supernet"))
    assert inherited.evaluate(supernet, [(1, 2, 1)]) != baseline
