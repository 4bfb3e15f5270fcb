"""The search outcome against ground truth: feasible set, percentile, regret, naive picks."""

from __future__ import annotations

import pytest

from nas_core.errors import ArchitectureError
from nas_core.outcome import percentile_of, search_outcome
from nas_core.ranking import distinct_networks
from nas_core.spaces.nas_bench_macro import nas_bench_macro


def synthetic_truth(space):
    """A made-up accuracy per encoding: more ops and bigger ops score higher, identical for
    encodings of one network (the benchmark's table has one entry per encoding)."""
    truth = {}
    for arch in distinct_networks(space):
        value = 80.0 + sum(1.0 + 0.3 * c + 0.01 * i * c for i, c in enumerate(arch))
        truth[space.encode(arch)] = value
    return {key: truth[space.encode(space.canonical(space.decode(key)))] for key in _all_encodings(space)}


def _all_encodings(space):
    import itertools

    return [space.encode(a) for a in itertools.product(*(range(n) for n in space.num_choices))]


def test_percentile_counts_ties_half():
    assert percentile_of(2.0, [1.0, 2.0, 3.0, 4.0]) == pytest.approx(37.5)
    assert percentile_of(5.0, [1.0, 2.0]) == 100.0


def test_outcome_matches_brute_force_under_a_macs_limit():
    space = nas_bench_macro(width=0.25)
    truth = synthetic_truth(space)
    networks = distinct_networks(space)
    limit = sorted(space.complexity(a)[0] for a in networks)[len(networks) // 2]
    feasible = [a for a in networks if space.complexity(a)[0] <= limit]
    chosen = feasible[7]
    outcome = search_outcome(space, truth, lambda a: space.complexity(a)[0] <= limit, chosen)

    accs = sorted(truth[space.encode(a)] for a in feasible)
    assert outcome.feasible == len(feasible) < len(networks)
    assert outcome.best_acc == accs[-1]
    assert outcome.chosen.regret == pytest.approx(accs[-1] - truth[space.encode(chosen)])
    assert outcome.chosen.percentile == pytest.approx(percentile_of(truth[space.encode(chosen)], accs))
    picks = {p.name: p for p in outcome.naive}
    assert picks["random (expected)"].ground_truth == pytest.approx(sum(accs) / len(accs))
    most = max(feasible, key=lambda a: space.complexity(a)[0])
    assert space.complexity(space.decode(picks["max MACs"].arch))[0] == space.complexity(most)[0]
    deepest = picks["fewest identities, then max MACs"]
    assert space.num_identities(space.decode(deepest.arch)) == min(space.num_identities(a) for a in feasible)
    assert "percentile" in outcome.summary() and outcome.chosen.arch in outcome.summary()


def test_no_feasible_network_is_an_error():
    space = nas_bench_macro(width=0.25)
    with pytest.raises(ArchitectureError, match="no network"):
        search_outcome(space, synthetic_truth(space), lambda a: False, (0,) * 8)
