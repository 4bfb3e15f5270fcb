"""Training techniques of issue 12: structural evaluators, the sandwich sampler and the
prior-guided ranking loss (tiny stand-in space, one thread)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch

from nas_core.components.base import StepContext
from nas_core.components.samplers import SandwichOptions, SandwichSampler
from nas_core.errors import ConfigError
from nas_core.spaces.nas_bench_macro import nas_bench_macro
from nas_core.trainer import Trainer

SANDWICH_RANKING = {
    "sampler": {"name": "sandwich", "random_paths": 2},
    "regularizers": [{"name": "ranking-loss", "prior": {"name": "depth"}, "warmup_fraction": 0.0, "ramp_end_fraction": 0.5}],
}


def every_arch(space):
    return list(itertools.product(*(range(n) for n in space.num_choices)))


# ------------------------------------------------------------------ structural evaluators


def test_structural_evaluators_read_the_architecture(nas_kit):
    macs, params, depth = (nas_kit.build("evaluator", {"name": n}) for n in ("macs", "params", "depth"))
    space = macs.space
    archs = every_arch(space)
    assert macs.evaluate(None, archs) == [float(space.complexity(a)[0]) for a in archs]
    assert params.evaluate(None, archs) == [float(space.complexity(a)[1]) for a in archs]
    assert depth.evaluate(None, [(0, 0, 0), (1, 0, 2), (2, 2, 2)]) == [0.0, 2.0, 3.0]
    assert macs.metric_name == "macs" and depth.metric_name == "depth"


def test_structural_scores_are_per_canonical_network():
    context = SimpleNamespace(space=nas_bench_macro(width=0.25), seed=0)
    from nas_core.components.structural import DepthEvaluator, MacsEvaluator, StructuralOptions

    a, b = (1, 1, 1, 0, 1, 1, 1, 1), (1, 1, 1, 1, 0, 1, 1, 1)  # identity moved inside a stage
    assert context.space.canonical(a) == context.space.canonical(b)
    for evaluator in (MacsEvaluator(context, StructuralOptions()), DepthEvaluator(context, StructuralOptions())):
        first, second = evaluator.evaluate(None, [a, b])
        assert first == second
    assert DepthEvaluator(context, StructuralOptions()).evaluate(None, [a])[0] == 7.0


# ------------------------------------------------------------------ sandwich sampler


def sandwich(seed=0, **options):
    return SandwichSampler(SimpleNamespace(space=nas_bench_macro(width=0.25), seed=seed), SandwichOptions(**options))


def test_sandwich_trains_largest_smallest_and_random_paths(nas_kit):
    sampler = nas_kit.build("sampler", {"name": "sandwich", "random_paths": 3})
    space = sampler.space
    by_macs = sorted(every_arch(space), key=lambda a: space.complexity(a)[0])
    paths = sampler.sample(0)
    assert len(paths) == sampler.paths_per_step == 5
    assert paths[0] == by_macs[-1] == (2, 2, 2)
    assert paths[1] == by_macs[0] == (0, 0, 0)
    assert space.complexity(paths[0])[0] == space.bounds()[0][1]
    assert space.complexity(paths[1])[0] == space.bounds()[0][0]
    randoms = [p for step in range(40) for p in sampler.sample(step)[2:]]
    assert len(set(randoms)) > 10  # uniform draws over the 27 architectures, not fixed paths


def test_sandwich_on_nas_bench_macro_is_all_mb6_k5_then_all_identities():
    sampler = sandwich()
    largest, smallest, *randoms = sampler.sample(0)
    assert sampler.space.describe(largest) == ["MB6_K5"] * 8
    assert sampler.space.describe(smallest) == ["Identity"] * 8
    assert len(randoms) == 2 and sampler.paths_per_step == 4


def test_sandwich_is_seeded_and_resumes():
    a, b, other = sandwich(5), sandwich(5), sandwich(6)
    steps_a = [a.sample(s) for s in range(6)]
    assert steps_a == [b.sample(s) for s in range(6)]
    assert steps_a != [other.sample(s) for s in range(6)]
    resumed = sandwich(99)
    resumed.load_state_dict(a.state_dict())
    assert [a.sample(s) for s in range(6, 10)] == [resumed.sample(s) for s in range(6, 10)]


def test_sandwich_without_random_paths_and_by_params():
    sampler = sandwich(random_paths=0, cost="params")
    assert sampler.sample(0) == [(2,) * 8, (0,) * 8]


def test_uniform_sampler_says_its_paths_per_step():
    from nas_core.components.samplers import UniformOptions, UniformSampler

    context = SimpleNamespace(space=nas_bench_macro(width=0.25), seed=3)
    spos, four = UniformSampler(context, UniformOptions()), UniformSampler(context, UniformOptions(paths_per_step=4))
    assert spos.paths_per_step == 1 and four.paths_per_step == 4
    singles = [spos.sample(s)[0] for s in range(8)]
    assert [p for s in range(2) for p in four.sample(s)] == singles  # the same stream, 4 draws per step


# ------------------------------------------------------------------ ranking loss


def ranking(nas_kit, **options):
    config = {"sampler": {"name": "sandwich"}, "train": {"max_steps": 100}}
    return nas_kit.build("regularizer", {"name": "ranking-loss", "prior": {"name": "macs"}, **options}, config=config)


def step_ctx(regularizer, paths, step=0):
    return StepContext(regularizer.context, step, 0, None, paths, None, lr=0.1)


def test_hinge_penalises_the_better_prior_path_having_the_higher_loss(nas_kit):
    reg = ranking(nas_kit, weight=2.0, warmup_fraction=0.0, ramp_end_fraction=0.0)
    big, small = (2, 2, 2), (0, 0, 0)  # macs prior: big is better
    loss_big = torch.tensor(2.0, requires_grad=True)
    loss_small = torch.tensor(1.5, requires_grad=True)
    ctx = step_ctx(reg, [big, small])
    term = reg.step_loss(ctx, [None, None], [loss_big, loss_small])
    assert term.item() == pytest.approx(2.0 * 0.5)
    term.backward()
    assert loss_big.grad.item() > 0  # descent lowers the better path's loss
    assert loss_small.grad.item() < 0  # and raises the worse one's
    assert ctx.metrics["ranking_loss/violated"] == 1.0
    assert ctx.metrics["ranking_loss/hinge"] == pytest.approx(0.5)

    ordered = reg.step_loss(step_ctx(reg, [big, small]), [None, None], [torch.tensor(1.0), torch.tensor(1.5)])
    assert ordered.item() == 0.0  # already in the prior's order: no penalty without a margin
    with_margin = ranking(nas_kit, margin=1.0, warmup_fraction=0.0, ramp_end_fraction=0.0)
    term = with_margin.step_loss(step_ctx(with_margin, [big, small]), [None, None], [torch.tensor(1.0), torch.tensor(1.5)])
    assert term.item() == pytest.approx(0.5)


def test_hinge_averages_over_pairs_and_skips_prior_ties(nas_kit):
    reg = ranking(nas_kit, prior={"name": "depth"}, warmup_fraction=0.0, ramp_end_fraction=0.0)
    paths = [(2, 2, 2), (1, 1, 1), (0, 0, 0), (0, 0, 1)]  # depths 3, 3, 0, 1
    losses = [torch.tensor(v) for v in (1.0, 3.0, 2.0, 2.5)]
    ctx = step_ctx(reg, paths)
    term = reg.step_loss(ctx, [None] * 4, losses)
    # pairs (better, worse): (0,2) (0,3) (1,2) (1,3) (3,2); violated: (1,2) by 1.0, (1,3) by 0.5, (3,2) by 0.5
    assert term.item() == pytest.approx((1.0 + 0.5 + 0.5) / 5)
    assert ctx.metrics["ranking_loss/violated"] == pytest.approx(3 / 5)


def test_weight_ramps_in_after_warmup(nas_kit):
    reg = ranking(nas_kit, weight=0.8, warmup_fraction=0.2, ramp_end_fraction=0.6)
    assert reg.context.schedule.total_steps == 100
    assert [reg.weight_at(s) for s in (0, 10, 19, 20)] == [0.0, 0.0, 0.0, 0.0]
    assert reg.weight_at(40) == pytest.approx(0.4)
    assert reg.weight_at(30) == pytest.approx(0.2)
    assert [reg.weight_at(s) for s in (60, 80, 99)] == [0.8, 0.8, 0.8]
    before = reg.step_loss(step_ctx(reg, [(2, 2, 2), (0, 0, 0)], step=5), [None, None], [torch.tensor(3.0), torch.tensor(1.0)])
    assert before is None  # no gradient before the warm-up ends; the hinge is still logged


def test_ramp_options_are_checked(nas_kit):
    with pytest.raises(ConfigError, match="ramp_end_fraction"):
        ranking(nas_kit, warmup_fraction=0.5, ramp_end_fraction=0.3)
    with pytest.raises(ConfigError, match="prior.name"):
        ranking(nas_kit, prior={"name": "no-such-evaluator"})


def test_prior_scores_are_cached_per_canonical_network_and_checkpointed(nas_kit):
    reg = ranking(nas_kit, prior={"name": "depth"})
    calls = []
    evaluate = reg.prior.evaluate
    reg.prior.evaluate = lambda supernet, archs: calls.append(list(archs)) or evaluate(supernet, archs)
    reg.prior_scores([(1, 1, 0), (1, 1, 0), (2, 2, 2)])
    reg.prior_scores([(1, 1, 0), (0, 0, 0)])
    assert calls == [[(1, 1, 0), (2, 2, 2)], [(0, 0, 0)]]
    fresh = ranking(nas_kit, prior={"name": "depth"})
    fresh.load_state_dict(reg.state_dict())
    assert fresh.scores == reg.scores
    other_prior = ranking(nas_kit, prior={"name": "macs"})
    other_prior.load_state_dict(reg.state_dict())
    assert other_prior.scores == {}  # scores of another prior are not reused


def test_ranking_loss_needs_several_paths_per_step(nas_kit):
    run, _ = nas_kit.open({"regularizers": SANDWICH_RANKING["regularizers"]})  # the kit's default sampler: uniform
    with pytest.raises(ConfigError) as error:
        run.check()
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert "ranking-loss" in message and "sampler 'uniform'" in message and "1 path per step" in message


def test_ranking_loss_with_a_single_path_config_fails_config_check(tmp_path):
    from nas_test_helpers import nas

    config = tmp_path / "rank.yaml"
    config.write_text(
        "space: {name: nas-bench-macro, width: 0.25}\ndata: {name: cifar10}\nsampler: {name: uniform}\n"
        "regularizers: [{name: ranking-loss, prior: {name: depth}}]\n"
    )
    proc = nas("config", "check", str(config))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "rank.yaml" in lines[0] and "ranking-loss" in lines[0] and "sampler 'uniform'" in lines[0]


# ------------------------------------------------------------------ training with both


def test_training_with_ranking_loss_logs_and_resumes_exactly(nas_kit, tmp_path):
    config = {**SANDWICH_RANKING, "train": {"max_steps": 8, "checkpoint_every_steps": 4, "log_every_steps": 1}}
    straight = nas_kit.train({**config, "run_dir": str(tmp_path / "straight")})
    metrics = straight.metrics
    assert len(metrics) == 8
    assert all(0.0 <= m["ranking_loss/violated"] <= 1.0 and m["ranking_loss/hinge"] >= 0.0 for m in metrics)
    assert [round(m["ranking_loss/weight"], 6) for m in metrics[:5]] == [0.0, 0.25, 0.5, 0.75, 1.0]

    run, _ = nas_kit.open({**config, "run_dir": str(tmp_path / "stopped")})
    trainer = Trainer(run)
    for _ in range(4):
        trainer.train_step()
    trainer.save()
    resumed_run, _ = nas_kit.open({**config, "run_dir": str(tmp_path / "stopped")})
    Trainer(resumed_run).fit(resume=True)

    a, b = straight.run.supernet.state_dict(), resumed_run.supernet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ranking_a, ranking_b = straight.run.regularizers[0], resumed_run.regularizers[0]
    assert ranking_a.state_dict() == ranking_b.state_dict() and ranking_a.scores


def test_coupled_backward_gives_the_per_path_gradient_without_a_step_term(nas_kit, tmp_path):
    """With the hinge weighted 0, one backward of the summed losses trains like per-path backward."""
    plain = nas_kit.train({"sampler": {"name": "sandwich"}, "train": {"max_steps": 3}, "run_dir": str(tmp_path / "plain")})
    zero = dict(SANDWICH_RANKING["regularizers"][0], weight=0.0)
    coupled = nas_kit.train({"sampler": {"name": "sandwich"}, "regularizers": [zero], "train": {"max_steps": 3}, "run_dir": str(tmp_path / "coupled")})
    a, b = plain.run.supernet.state_dict(), coupled.run.supernet.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
