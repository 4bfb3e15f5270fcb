from types import SimpleNamespace

import pytest

from nas_core.components.samplers import FairOptions, FairSampler, UniformOptions, UniformSampler
from nas_core.spaces.nas_bench_macro import nas_bench_macro


def fake_context(seed=0):
    """The two things a sampler reads from its context."""
    return SimpleNamespace(space=nas_bench_macro(width=0.25), seed=seed)


def fair(seed=0, **options):
    return FairSampler(fake_context(seed), FairOptions(**options))


def uniform(seed=0):
    return UniformSampler(fake_context(seed), UniformOptions())


@pytest.mark.parametrize("steps", [1, 7, 50])
def test_fairnas_every_choice_of_every_layer_exactly_equally_often(steps):
    sampler = fair()
    counts = [[0, 0, 0] for _ in range(8)]
    for step in range(steps):
        paths = sampler.sample(step)
        assert len(paths) == 3
        for layer in range(8):
            assert sorted(p[layer] for p in paths) == [0, 1, 2]  # one permutation per layer per step
        for path in paths:
            for layer, choice in enumerate(path):
                counts[layer][choice] += 1
    assert all(row == [steps] * 3 for row in counts)
    assert sampler.counts == counts


def test_fairnas_with_more_paths_than_choices_stays_fair_at_deck_boundaries():
    sampler = fair(paths_per_step=6)
    for step in range(4):
        sampler.sample(step)
    assert all(row == [8, 8, 8] for row in sampler.counts)


def test_sampler_state_round_trip_continues_identically():
    a = fair(3)
    for step in range(5):
        a.sample(step)
    b = fair(99)
    b.load_state_dict(a.state_dict())
    assert [a.sample(s) for s in range(5, 10)] == [b.sample(s) for s in range(5, 10)]
    u, v = uniform(1), uniform(2)
    u.sample(0)
    v.load_state_dict(u.state_dict())
    assert u.sample(1) == v.sample(1)


def test_uniform_sampler_covers_choices():
    sampler = uniform()
    seen = {c for s in range(200) for path in sampler.sample(s) for c in path}
    assert seen == {0, 1, 2}
