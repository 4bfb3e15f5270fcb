"""The proxies on the kit's stand-ins: deterministic, side-effect free, independent of batching,
and each behaving as its paper defines it."""

from __future__ import annotations

import math

import pytest
import torch

from nas_zero_cost import plugin
from nas_zero_cost.proxies import naswot, synflow, zen_score

ALL_IDENTITY = (0, 0, 0)
ALL_LARGEST = (2, 2, 2)
ARCHS = [ALL_IDENTITY, (1, 2, 0), (2, 1, 1), ALL_LARGEST]


@pytest.mark.parametrize("weights", ["init", "supernet"])
@pytest.mark.parametrize("name", sorted(plugin.EVALUATORS))
def test_scores_are_deterministic_independent_of_batching_and_leave_the_supernet_alone(name, weights, tiny_run):
    options = plugin.OPTIONS[name](weights=weights, batch_size=16)
    evaluator = plugin.EVALUATORS[name](tiny_run.context, options)
    supernet = tiny_run.supernet
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    together = evaluator.evaluate(supernet, ARCHS)
    fresh = plugin.EVALUATORS[name](tiny_run.context, options)
    one_by_one = [fresh.evaluate(supernet, [a])[0] for a in reversed(ARCHS)][::-1]
    assert together == one_by_one  # the evaluator contract: a score depends on the architecture alone
    assert all(math.isfinite(s) for s in together)
    assert len(set(together)) == len(ARCHS), f"{name} does not tell the architectures apart: {together}"
    after = supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "evaluating changed the supernet"


def test_the_seed_defaults_to_the_run_seed(nas_kit):
    run0, _ = nas_kit.open({"evaluator": {"name": "zen-score"}}, plugins=[plugin])
    run5, _ = nas_kit.open({"seed": 5, "evaluator": {"name": "zen-score"}}, plugins=[plugin])
    explicit, _ = nas_kit.open({"seed": 5, "evaluator": {"name": "zen-score", "seed": 0}}, plugins=[plugin])
    a, b, c = (r.evaluator.evaluate(None, [(1, 2, 1)])[0] for r in (run0, run5, explicit))
    assert a != b and a == c


def test_synflow_grows_with_the_network(tiny_supernet, tiny_data):
    images = tiny_data.train.images[:8].float() / 255
    scores = [synflow(tiny_supernet.extract(a), images) for a in (ALL_IDENTITY, (1, 1, 1), ALL_LARGEST)]
    assert scores[0] < scores[1] < scores[2]


def test_synflow_is_data_free(tiny_supernet, tiny_data):
    images = tiny_data.train.images[:8].float() / 255
    a = synflow(tiny_supernet.extract((1, 2, 1)), images)
    b = synflow(tiny_supernet.extract((1, 2, 1)), torch.randn_like(images))
    assert a == pytest.approx(b, rel=1e-12)


def test_naswot_is_higher_for_distinct_activation_patterns(tiny_supernet, tiny_data):
    images = tiny_data.train.images[:16].float() / 255
    varied = naswot(tiny_supernet.extract(ALL_LARGEST), images)
    same = naswot(tiny_supernet.extract(ALL_LARGEST), images[:1].repeat(16, 1, 1, 1))
    assert varied > same  # identical inputs give identical codes: a singular kernel


def test_naswot_is_the_log_determinant_of_the_hamming_kernel():
    """A network whose only units are its 4 inputs (one ReLU): codes are the inputs' signs."""
    x = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [-1, -1, 1, 1]])
    codes = (x > 0).double()
    hamming = torch.cdist(codes, codes, p=1)
    expected = float(torch.linalg.slogdet(4 - hamming).logabsdet)
    assert naswot(torch.nn.ReLU(), x) == pytest.approx(expected, abs=1e-12)


def zen(network, images, seed=0, **kwargs):
    torch.manual_seed(seed)
    return zen_score(network, images, **kwargs)


def test_zen_score_is_data_free_and_seeded(tiny_supernet, tiny_data):
    images = tiny_data.train.images[:8].float() / 255
    net = tiny_supernet.extract((1, 2, 1))
    assert zen(net, images) == zen(net, torch.randn_like(images) * 7)  # only the shape is used
    assert zen(net, images, seed=0) != zen(net, images, seed=1)


def test_zen_score_puts_back_the_scale_that_batch_norm_removes(tiny_supernet, tiny_data):
    """Scaling the stem conv by c changes nothing after its BN (train-mode statistics), so the
    feature-map difference stays; the BN variance correction adds exactly log c."""
    images = tiny_data.train.images[:8].float() / 255
    net = tiny_supernet.extract((1, 2, 1))
    base = zen(net, images)
    stem_conv = next(m for m in net.stem.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        stem_conv.weight.mul_(10.0)
    assert zen(net, images) - base == pytest.approx(math.log(10.0), abs=1e-3)


def test_zen_score_grows_with_the_perturbation(tiny_supernet, tiny_data):
    images = tiny_data.train.images[:8].float() / 255
    net = tiny_supernet.extract(ALL_LARGEST)
    assert zen(net, images, alpha=0.1) > zen(net, images, alpha=0.01)


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


def test_zen_init_is_gaussian(tiny_run):
    evaluator = plugin.ZenScoreEvaluator(tiny_run.context, plugin.ZenOptions())
    init = evaluator.source(None)
    weights = torch.cat([m.weight.detach().flatten() for m in init.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(float(weights.mean())) < 0.2 and float(weights.std()) == pytest.approx(1.0, abs=0.2)
