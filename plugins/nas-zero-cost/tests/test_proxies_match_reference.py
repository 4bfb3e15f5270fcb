"""The fast proxies give the scores of the original implementation, kept here as the reference.

The reference is the plugin's code before it scored paths in place: each architecture's path
extracted as a standalone copy (``supernet.extract``), NASWOT's kernel built in float64 from
the concatenated codes, synflow mutating its copy, Zen-score updating its copy's BN buffers.
``benchmarks/bench_proxy_speed.py`` times the reference against the plugin with these functions.
"""

from __future__ import annotations

import math

import pytest
import torch

from nas_core.api import sample_distinct
from nas_zero_cost import plugin
from nas_zero_cost.proxies import ACTIVATION_TYPES, BATCHNORM_TYPES, _pre_pooling_modules, naswot_kernel


# ----------------------------------------------------------------- the reference implementation


@torch.no_grad()
def reference_naswot_kernel(net: torch.nn.Module, images: torch.Tensor) -> torch.Tensor | None:
    codes: list[torch.Tensor] = []

    def keep(_module, _inputs, output):
        codes.append((output.flatten(1) > 0).to(torch.float64))

    handles = [m.register_forward_hook(keep) for m in net.modules() if isinstance(m, ACTIVATION_TYPES)]
    try:
        net.train()
        net(images)
    finally:
        for handle in handles:
            handle.remove()
    if not codes:
        return None
    c = torch.cat(codes, dim=1)
    return c @ c.T + (1 - c) @ (1 - c).T


def reference_naswot(net, images, labels=None) -> float:
    kernel = reference_naswot_kernel(net, images)
    return 0.0 if kernel is None else float(torch.linalg.slogdet(kernel).logabsdet)


def reference_synflow(net, images, labels=None) -> float:
    net = net.double().eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, BATCHNORM_TYPES):
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=images.device)
    net(ones).sum().backward()
    total = sum(float((p.detach() * p.grad).sum()) for p in net.parameters() if p.grad is not None)
    return math.log(total) if total > 0 else float("-inf")


@torch.no_grad()
def reference_zen_score(net, images, labels=None, *, alpha: float = 0.01, repeats: int = 1) -> float:
    feature = torch.nn.Sequential(*_pre_pooling_modules(net)).train()
    bns = [m for m in feature.modules() if isinstance(m, BATCHNORM_TYPES)]
    variances: list[float] = []

    def record_variance(_module, inputs):
        x = inputs[0]
        variances.append(float(x.transpose(0, 1).flatten(1).var(dim=1, unbiased=False).mean()))

    total = 0.0
    log_sigma = 0.0
    for _ in range(repeats):
        x = torch.randn_like(images)
        eps = torch.randn_like(images)
        variances.clear()
        handles = [bn.register_forward_pre_hook(record_variance) for bn in bns]
        try:
            clean = feature(x)
        finally:
            for handle in handles:
                handle.remove()
        perturbed = feature(x + alpha * eps)
        total += float((clean - perturbed).flatten(1).norm(dim=1).mean())
        log_sigma += sum(0.5 * math.log(v) for v in variances if v > 0)
    delta, log_sigma = total / repeats, log_sigma / repeats
    return (math.log(delta) if delta > 0 else float("-inf")) + log_sigma


REFERENCE = {"naswot": reference_naswot, "synflow": reference_synflow, "zen-score": reference_zen_score}


def reference_evaluate(evaluator: plugin.ZeroCostEvaluator, supernet, archs) -> list[float]:
    """What ``evaluator.evaluate(supernet, archs)`` returned before: the same batch, source
    supernet and seeding, the proxy run on an extracted copy of each path."""
    images, labels = evaluator.batch()
    source = evaluator.source(supernet)
    extra = {"alpha": evaluator.alpha, "repeats": evaluator.repeats} if isinstance(evaluator, plugin.ZenScoreEvaluator) else {}
    scores = []
    for arch in archs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(evaluator.seed)
            scores.append(REFERENCE[evaluator.metric_name.replace("_", "-")](source.extract(arch), images, labels, **extra))
    return scores


# ---------------------------------------------------------------------------------- the tests

# Tolerance. NASWOT: both kernels are integer matrices computed exactly (float64 sums of 0/1
# in the reference; exact float32 partial sums accumulated in float64 here -- see
# AgreementKernel), asserted bit-identical below, so the scores are slogdet of the same
# matrix. Synflow and Zen-score run the same float64 / float32 operations on the same tensors
# in the same order. Any difference can therefore only be rounding of identical operations
# (observed: none, the scores are bit-identical on CPU); rel 1e-12 is ~4,500 float64 ulps,
# while two different networks' scores differ by more than 1e-4 relative.
REL = 1e-12


def _scores_match(run, archs, supernet=None, batch_size=16, weights="init"):
    for name in sorted(plugin.EVALUATORS):
        options = plugin.OPTIONS[name](weights=weights, batch_size=batch_size)
        new = plugin.EVALUATORS[name](run.context, options).evaluate(supernet, archs)
        old = reference_evaluate(plugin.EVALUATORS[name](run.context, options), supernet, archs)
        worst = max(abs(a - b) / abs(b) for a, b in zip(new, old))
        print(f"[margin] {name}: largest relative difference to the reference {worst:.3g}, bound {REL}")
        assert new == pytest.approx(old, rel=REL, abs=0), name


@pytest.mark.parametrize("weights", ["init", "supernet"])
def test_tiny_space_scores_equal_the_reference(tiny_run, weights):
    archs = [(0, 0, 0), (1, 2, 0), (2, 1, 1), (2, 2, 2), (0, 2, 1)]
    _scores_match(tiny_run, archs, supernet=tiny_run.supernet, weights=weights)


def test_nas_bench_macro_scores_and_kernels_equal_the_reference(macro_run):
    archs = [(0,) * 8, (2,) * 8, *sample_distinct(macro_run.space, 4, seed=3)]
    _scores_match(macro_run, archs, batch_size=64)  # NASWOT's default batch: a 64 x 64 kernel
    evaluator = plugin.NaswotEvaluator(macro_run.context, plugin.ZeroCostOptions(batch_size=64))
    images, _ = evaluator.batch()
    source = evaluator.source(None)
    for arch in archs:
        fast = naswot_kernel(source.path(arch), images).matrix()
        reference = reference_naswot_kernel(source.extract(arch), images)
        assert torch.equal(fast, reference), arch  # the same integer matrix, bit for bit
        assert float(reference.max()) > 2**11  # counts beyond float16's exact integers: the precision matters


def _fingerprint(supernet):
    return {k: v.clone() for k, v in supernet.state_dict().items()}, [m.training for m in supernet.modules()]


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_scoring_in_place_leaves_weights_buffers_and_modes_unchanged(macro_run, mode):
    """Every proxy, scoring the trained supernet's own paths (``weights: supernet``), leaves its
    parameters, BN running statistics and counters, and every module's mode as they were."""
    supernet = macro_run.supernet
    with torch.no_grad():  # running statistics that differ from a fresh BN's 0 / 1
        for module in supernet.modules():
            if isinstance(module, BATCHNORM_TYPES):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    supernet.train(mode == "train")
    state, modes = _fingerprint(supernet)
    archs = [(2,) * 8, (1, 0, 2, 1, 0, 2, 1, 2)]
    for name in sorted(plugin.EVALUATORS):
        evaluator = plugin.EVALUATORS[name](macro_run.context, plugin.OPTIONS[name](weights="supernet", batch_size=16))
        scores = evaluator.evaluate(supernet, archs)
        assert all(math.isfinite(s) for s in scores)
        after_state, after_modes = _fingerprint(supernet)
        changed = [k for k in state if not torch.equal(state[k], after_state[k])]
        assert not changed, f"{name} changed {changed[:5]}"
        assert after_modes == modes, f"{name} changed a module's train/eval mode"
        assert all(p.grad is None for p in supernet.parameters()), f"{name} left gradients on the supernet"
