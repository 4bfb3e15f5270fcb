"""How far to trust the supernet: rank correlation of its scores with ground truth.

For a seeded sample of distinct (canonical) architectures: Kendall tau and Spearman rho
(scipy.stats) with paired bootstrap confidence intervals, tau inside groups of equal identity
count (the strongest single predictor on NAS-Bench-Macro, so overall tau alone flatters), the
overlap of the top-k sets, and a scatter plot.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import stats

from nas_core.errors import ArchitectureError
from nas_core.spaces.space import SearchSpace
from nas_core.spaces.supernet import Arch


ENUMERATION_LIMIT = 200_000
"""Spaces with at most this many encodings are enumerated to sample distinct networks exactly."""


def encodings_per_network(space: SearchSpace, arch: Arch) -> int:
    """How many architecture strings compute this canonical network.

    Free identities inside a run of shape-preserving layers can sit anywhere in it: a run of
    ``L`` layers holding ``k`` of them is written in ``C(L, k)`` ways.
    """
    count, i, layers = 1, 0, space.layers
    while i < len(arch):
        if not layers[i].shape_preserving:
            i += 1
            continue
        j = i
        while j < len(arch) and layers[j].shape_preserving:
            j += 1
        skips = sum(layers[k].is_free_identity(arch[k]) for k in range(i, j))
        count *= math.comb(j - i, skips)
        i = j
    return count


@lru_cache(maxsize=8)
def _all_distinct(space: SearchSpace) -> tuple[Arch, ...]:
    return tuple(sorted({space.canonical(a) for a in itertools.product(*(range(n) for n in space.num_choices))}))


def distinct_networks(space: SearchSpace) -> list[Arch] | None:
    """Every distinct (canonical) network of a small space, sorted; None when the space is too large."""
    return list(_all_distinct(space)) if space.size <= ENUMERATION_LIMIT else None


def sample_distinct(space: SearchSpace, count: int, seed: int, exclude: Sequence[Arch] = ()) -> list[Arch]:
    """``count`` distinct canonical networks drawn uniformly over NETWORKS (not encodings).

    Drawing encodings and canonicalising would favour networks with many encodings (those with
    identities); small spaces are enumerated and sampled exactly, large ones by rejection
    (an encoding is kept with probability 1 / its network's number of encodings).
    ``exclude`` keeps a second sample disjoint from a first one.
    """
    excluded = {space.canonical(a) for a in exclude}
    everything = distinct_networks(space)
    rng = random.Random(seed)
    if everything is not None:
        pool = [a for a in everything if a not in excluded]
        if count > len(pool):
            raise ArchitectureError(
                f"cannot draw {count} distinct networks: space '{space.name}' has {len(pool)} distinct networks"
                + (f" outside the {len(excluded)} excluded" if excluded else "")
            )
        return rng.sample(pool, count)
    if count + len(excluded) > space.size:
        raise ArchitectureError(f"cannot draw {count} distinct networks: space '{space.name}' has only {space.size} architecture strings")
    seen: set[Arch] = set()
    ordered: list[Arch] = []
    draws_since_new, patience = 0, 1000 * max(count, 100)
    while len(ordered) < count:
        arch = space.canonical(space.sample(rng))
        draws_since_new += 1
        if draws_since_new > patience:
            raise ArchitectureError(
                f"cannot draw {count} distinct networks from space '{space.name}': {patience} draws in a row found no new one "
                f"after {len(ordered)} (it has fewer distinct networks than that, or almost)"
            )
        if arch in seen or arch in excluded or rng.random() * encodings_per_network(space, arch) >= 1:
            continue
        seen.add(arch)
        ordered.append(arch)
        draws_since_new = 0
    return ordered


def _tau(x: Sequence[float], y: Sequence[float]) -> float:
    return float(stats.kendalltau(x, y).statistic)


def _rho(x: Sequence[float], y: Sequence[float]) -> float:
    return float(stats.spearmanr(x, y).statistic)


def bootstrap_ci(x: np.ndarray, y: np.ndarray, statistic, resamples: int, seed: int) -> tuple[float, float]:
    if resamples <= 0 or len(x) < 3:
        return (float("nan"), float("nan"))
    result = stats.bootstrap(
        (x, y), lambda a, b: statistic(a, b), paired=True, vectorized=False, n_resamples=resamples,
        method="percentile", confidence_level=0.95, random_state=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def top_k_overlap(predicted: np.ndarray, truth: np.ndarray, k: int) -> float:
    """|top-k by prediction ∩ top-k by truth| / k."""
    k = min(k, len(predicted))
    top_pred = set(np.argsort(-predicted, kind="stable")[:k])
    top_true = set(np.argsort(-truth, kind="stable")[:k])
    return len(top_pred & top_true) / k


def rank_statistics(
    predicted: Sequence[float], truth: Sequence[float], groups: Sequence[int], resamples: int = 1000, seed: int = 0, top_k: Sequence[int] = (10,)
) -> dict[str, Any]:
    """All ranking numbers for paired (predicted, truth) scores; ``groups`` e.g. identity counts."""
    x, y, g = np.asarray(predicted, float), np.asarray(truth, float), np.asarray(groups)
    report: dict[str, Any] = {
        "n": int(len(x)),
        "kendall_tau": _tau(x, y),
        "kendall_tau_ci95": bootstrap_ci(x, y, _tau, resamples, seed),
        "spearman_rho": _rho(x, y),
        "spearman_rho_ci95": bootstrap_ci(x, y, _rho, resamples, seed + 1),
        "top_k_overlap": {str(k): top_k_overlap(x, y, k) for k in top_k},
    }
    per_group, weights, taus = {}, [], []
    for value in sorted(set(g.tolist())):
        mask = g == value
        if mask.sum() >= 3 and len(set(y[mask])) > 1:
            tau = _tau(x[mask], y[mask])
            if not np.isnan(tau):
                per_group[str(value)] = {"n": int(mask.sum()), "kendall_tau": tau}
                weights.append(mask.sum())
                taus.append(tau)
    report["group_tau"] = per_group
    report["group_tau_weighted_mean"] = float(np.average(taus, weights=weights)) if taus else float("nan")
    return report


def paired_difference(
    a: Sequence[float], b: Sequence[float], truth: Sequence[float], statistic=None, resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """statistic(a, truth) - statistic(b, truth) with a paired bootstrap 95% CI (same resampled
    networks for both scorers). Default statistic: Kendall tau."""
    statistic = statistic or _tau
    x, y, t = np.asarray(a, float), np.asarray(b, float), np.asarray(truth, float)
    diff = statistic(x, t) - statistic(y, t)
    if resamples <= 0 or len(t) < 3:
        return {"difference": float(diff), "ci95": (float("nan"), float("nan"))}
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        idx = rng.integers(0, len(t), len(t))
        value = statistic(x[idx], t[idx]) - statistic(y[idx], t[idx])
        if not np.isnan(value):
            draws.append(value)
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"difference": float(diff), "ci95": (float(low), float(high))}


def scatter_plot(predicted: Sequence[float], truth: Sequence[float], groups: Sequence[int], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    points = ax.scatter(truth, predicted, c=groups, cmap="viridis", s=12, alpha=0.8)
    fig.colorbar(points, ax=ax, label="identity layers")
    ax.set_xlabel("ground-truth accuracy (%)")
    ax.set_ylabel("supernet score")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def save_json(data: dict[str, Any], path: Path) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
    return path
