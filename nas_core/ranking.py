"""How far to trust the supernet: rank correlation of its scores with ground truth.

For a seeded sample of distinct (canonical) architectures: Kendall tau and Spearman rho
(scipy.stats) with paired bootstrap confidence intervals, tau inside groups of equal identity
count (the strongest single predictor on NAS-Bench-Macro, so overall tau alone flatters), the
overlap of the top-k sets, and a scatter plot.
"""

from __future__ import annotations

import itertools
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


def sample_up_to(space: SearchSpace, count: int, seed: int) -> list[Arch]:
    """``count`` distinct networks drawn by :func:`sample_distinct`, or every distinct network
    when a small space has fewer (the seeded samples that wrapper evaluators score once)."""
    everything = distinct_networks(space)
    return sample_distinct(space, count if everything is None else min(count, len(everything)), seed)


def _tau(x: Sequence[float], y: Sequence[float]) -> float:
    return float(stats.kendalltau(x, y).statistic)


def _rho(x: Sequence[float], y: Sequence[float]) -> float:
    return float(stats.spearmanr(x, y).statistic)


BATCHED_LIMIT = 1000
"""Samples of up to this many networks get their bootstrap tau and rho for many resamples at
once (:func:`resampled_taus`, :func:`resampled_rhos`: n x n pair matrices, fast for the study's
200); larger ones one scipy call per resample (n log n each), which is then cheaper."""

BATCH_CELLS = 2_000_000
"""Resamples x networks held at once by the batched bootstrap (bounds its memory)."""


def bootstrap_ci(x: np.ndarray, y: np.ndarray, statistic: str, resamples: int, seed: int) -> tuple[float, float]:
    """Percentile 95% CI of Kendall tau (``statistic="tau"``) or Spearman rho (``"rho"``) over
    ``resamples`` paired bootstrap resamples of the networks (scipy.stats.bootstrap).

    scipy's paired bootstrap resamples the indices of the observations; small samples hand it
    those indices directly (the same draws), so a batch of resamples is scored at once.
    """
    if resamples <= 0 or len(x) < 3:
        return (float("nan"), float("nan"))
    one, batched = {"tau": (_tau, resampled_taus), "rho": (_rho, resampled_rhos)}[statistic]
    options = dict(
        n_resamples=resamples, batch=max(1, BATCH_CELLS // len(x)), method="percentile", confidence_level=0.95,
        random_state=np.random.default_rng(seed),
    )
    if len(x) <= BATCHED_LIMIT:
        result = stats.bootstrap((np.arange(len(x)),), lambda i, axis=-1: batched(x, y, resample_counts(i, len(x))), vectorized=True, **options)
    else:
        result = stats.bootstrap((x, y), lambda a, b: one(a, b), paired=True, vectorized=False, **options)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def resample_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """``counts[..., i]``: how often each resample (a row of ``indices``) drew item ``i``."""
    rows = np.reshape(indices, (-1, indices.shape[-1]))
    offsets = np.arange(len(rows))[:, None] * n
    counts = np.bincount((rows + offsets).ravel(), minlength=len(rows) * n).astype(float)
    return counts.reshape(*indices.shape[:-1], n)


def resampled_taus(x: np.ndarray, t: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Kendall tau-b of (x, t) on each bootstrap resample, given as ``counts[..., i]``: how
    often the resample drew item ``i``. NaN where a resample has no untied pair.

    With ``S_x[i, j] = sign(x_i - x_j)``, the pairs of a resample (copies of one item are tied
    in both) give tau-b = c' (S_x * S_t) c / sqrt(c' |S_x| c * c' |S_t| c): concordant minus
    discordant pairs over the pairs untied in each variable, scipy's definition, as three
    matrix products over all resamples instead of one sort per resample.
    """
    x, t = stats.rankdata(x), stats.rankdata(t)  # same order and ties; inf is a value, NaN makes everything NaN (as in scipy)
    sx, st = np.sign(x[:, None] - x[None, :]), np.sign(t[:, None] - t[None, :])

    def pair_sum(matrix: np.ndarray) -> np.ndarray:
        return np.einsum("...i,...i->...", counts @ matrix, counts)

    untied = pair_sum(np.abs(sx)) * pair_sum(np.abs(st))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(untied > 0, pair_sum(sx * st) / np.sqrt(untied), np.nan)


def resampled_rhos(x: np.ndarray, t: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Spearman rho of (x, t) on each bootstrap resample (``counts`` as in :func:`resampled_taus`):
    the count-weighted Pearson correlation of the resample's average ranks."""
    def ranks(values: np.ndarray) -> np.ndarray:
        # an item's average rank among the resample's copies: the copies below it, plus the middle of its own value's copies
        below = counts @ (values[:, None] < values[None, :])
        same = counts @ (values[:, None] == values[None, :])
        return below + (same + 1) / 2

    def centred(r: np.ndarray) -> np.ndarray:
        return r - (np.sum(counts * r, axis=-1) / np.sum(counts, axis=-1))[..., None]

    x, t = stats.rankdata(x), stats.rankdata(t)  # as in resampled_taus
    rx, rt = centred(ranks(x)), centred(ranks(t))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(counts * rx * rt, axis=-1) / np.sqrt(np.sum(counts * rx * rx, axis=-1) * np.sum(counts * rt * rt, axis=-1))


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
        "kendall_tau_ci95": bootstrap_ci(x, y, "tau", resamples, seed),
        "spearman_rho": _rho(x, y),
        "spearman_rho_ci95": bootstrap_ci(x, y, "rho", resamples, seed + 1),
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
    networks for both scorers). Default statistic: Kendall tau (tau-b), for samples of up to
    ``BATCHED_LIMIT`` networks computed a batch of resamples at a time by
    :func:`resampled_taus` (the same draws and values as one scipy ``kendalltau`` call per
    resample, many times faster); any other ``statistic`` is called once per resample."""
    x, y, t = np.asarray(a, float), np.asarray(b, float), np.asarray(truth, float)
    one = statistic or _tau
    diff = one(x, t) - one(y, t)
    if resamples <= 0 or len(t) < 3:
        return {"difference": float(diff), "ci95": (float("nan"), float("nan"))}
    rng, per_chunk = np.random.default_rng(seed), max(1, BATCH_CELLS // len(t))
    chunks = (
        np.stack([rng.integers(0, len(t), len(t)) for _ in range(min(per_chunk, resamples - start))])
        for start in range(0, resamples, per_chunk)
    )
    if statistic is None and len(t) <= BATCHED_LIMIT:
        values = np.concatenate([
            resampled_taus(x, t, counts) - resampled_taus(y, t, counts) for counts in (resample_counts(chunk, len(t)) for chunk in chunks)
        ])
    else:
        values = np.array([one(x[idx], t[idx]) - one(y[idx], t[idx]) for chunk in chunks for idx in chunk])
    values = values[~np.isnan(values)]
    if not len(values):  # e.g. a scorer that gives every network the same score: tau is undefined on every resample
        return {"difference": float(diff), "ci95": (float("nan"), float("nan"))}
    low, high = np.percentile(values, [2.5, 97.5])
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
