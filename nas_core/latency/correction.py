"""A small correction from the sum of per-op times to end-to-end latency, fitted on measurements.

What the sum of per-op times can miss is systematic: a whole network may run its ops slower
or faster than the networks they were timed in (caches, a machine that drifted between
measuring the table and using it), and reading the clocks around every layer costs a little
per executed layer. Two terms cover both, and the candidate models are nested:

    latency ~= scale * raw_ms + per_layer_ms * layers        (layers: those that run an op)

``none`` (the raw sum), ``scale``, ``scale+per-layer``. They are fitted by least squares on
relative error (every network counts the same, whatever its size) and compared by k-fold
cross-validation: the model kept is the one whose error on networks it was NOT fitted on is
lowest, so a correction is kept only when it generalises. There is deliberately no free
constant: a network's fixed cost is measured (stem and head are ops of the table), and a fitted
constant extrapolated badly to networks smaller than those it was fitted on (-18% on the
smallest NAS-Bench-Macro network in one check). A fit whose scale leaves ``PLAUSIBLE_SCALE``
is a sign of broken timings, not a correction, and is never kept.

The same least squares, with a constant, maps MACs to milliseconds, so MACs can be scored as
a predictor beside the table. Fitting uses numpy only; tests run it on synthetic timings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

PLAUSIBLE_SCALE = (0.5, 2.0)
MAX_MARGIN_PCT = 100.0
"""A safety margin at or above this (one network in ten measured at least twice its
cross-validated prediction) says the timings are broken, not that limits need slack: such a
fit is reported but never stored."""
MODELS: dict[str, tuple[str, ...]] = {
    "none": (),
    "scale": ("scale",),
    "scale+per-layer": ("scale", "per_layer"),
}


@dataclass(frozen=True)
class Correction:
    model: str = "none"
    scale: float = 1.0
    per_layer_ms: float = 0.0

    def apply(self, raw_ms: float | np.ndarray, layers: float | np.ndarray) -> float | np.ndarray:
        return self.scale * raw_ms + self.per_layer_ms * layers

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Correction":
        if data.get("model") not in MODELS:
            raise ValueError(f"unknown correction model {data.get('model')!r}")
        scale, per_layer = float(data.get("scale", 1.0)), float(data.get("per_layer_ms", 0.0))
        if not (np.isfinite(scale) and np.isfinite(per_layer)) or scale <= 0:
            raise ValueError("correction coefficients must be finite with a positive scale")
        return cls(data["model"], scale, per_layer)


def abs_pct_errors(predicted: Sequence[float], measured: Sequence[float]) -> np.ndarray:
    predicted, measured = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    return np.abs(predicted - measured) / measured * 100


def error_summary(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    predicted, measured = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    errors = abs_pct_errors(predicted, measured)
    return {
        "median_abs_pct": float(np.median(errors)),
        "max_abs_pct": float(errors.max()),
        "mean_abs_pct": float(errors.mean()),
        "median_signed_pct": float(np.median((predicted - measured) / measured * 100)),
    }


def _relative_lstsq(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """beta minimising sum(((X @ beta - y) / y)^2)."""
    beta, *_ = np.linalg.lstsq(X / y[:, None], np.ones_like(y), rcond=None)
    return beta


def fit(model: str, raw_ms: Sequence[float], layers: Sequence[float], measured_ms: Sequence[float]) -> Correction:
    terms = MODELS[model]
    if not terms:
        return Correction()
    raw, n, y = (np.asarray(v, dtype=float) for v in (raw_ms, layers, measured_ms))
    columns = {"scale": raw, "per_layer": n}
    values = dict(zip(terms, _relative_lstsq(np.stack([columns[t] for t in terms], axis=1), y).tolist()))
    return Correction(model, scale=values["scale"], per_layer_ms=values.get("per_layer", 0.0))


def _folds(count: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    order = np.random.default_rng(seed).permutation(count)
    return [(np.setdiff1d(order, order[k::folds]), order[k::folds]) for k in range(folds)]


def cross_validated(model: str, raw_ms: Sequence[float], layers: Sequence[float], measured_ms: Sequence[float], folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions: each network predicted by a correction fitted without it."""
    raw, n, y = (np.asarray(v, dtype=float) for v in (raw_ms, layers, measured_ms))
    predictions = np.empty_like(y)
    for kept, held in _folds(len(y), folds, seed):
        predictions[held] = fit(model, raw[kept], n[kept], y[kept]).apply(raw[held], n[held])
    return predictions


def select(raw_ms: Sequence[float], layers: Sequence[float], measured_ms: Sequence[float], folds: int = 5, seed: int = 0) -> tuple[Correction, dict[str, dict[str, float]]]:
    """The model with the lowest cross-validated mean absolute error, fitted on all networks,
    and every model's cross-validated errors. Needs at least ``2 * folds`` networks."""
    if len(measured_ms) < 2 * folds:
        raise ValueError(f"fitting a correction needs at least {2 * folds} networks, got {len(measured_ms)}")
    report = {model: error_summary(cross_validated(model, raw_ms, layers, measured_ms, folds, seed), measured_ms) for model in MODELS}
    fits = {model: fit(model, raw_ms, layers, measured_ms) for model in MODELS}
    plausible = [m for m in MODELS if PLAUSIBLE_SCALE[0] <= fits[m].scale <= PLAUSIBLE_SCALE[1]]
    best = min(plausible, key=lambda m: report[m]["mean_abs_pct"])  # ties keep the simpler model (dict order)
    return fits[best], report


def safety_margin_pct(predicted: Sequence[float], measured: Sequence[float], quantile: float = 90) -> float:
    """How much to add to predictions so that ``quantile`` % of networks measure below them:
    the ``quantile``-th percentile of the under-prediction (measured / predicted - 1), in %."""
    under = (np.asarray(measured, dtype=float) / np.asarray(predicted, dtype=float) - 1) * 100
    return float(max(0.0, np.percentile(under, quantile)))


def affine_cross_validated(x: Sequence[float], measured_ms: Sequence[float], folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions of ``slope * x + intercept`` (e.g. MACs -> ms), fitted like a correction."""
    x, y = np.asarray(x, dtype=float), np.asarray(measured_ms, dtype=float)
    predictions = np.empty_like(y)
    for kept, held in _folds(len(y), folds, seed):
        slope, intercept = affine_fit(x[kept], y[kept])
        predictions[held] = slope * x[held] + intercept
    return predictions


def affine_fit(x: Sequence[float], measured_ms: Sequence[float]) -> tuple[float, float]:
    """(slope, intercept) of the relative-error least-squares line through (x, measured)."""
    x, y = np.asarray(x, dtype=float), np.asarray(measured_ms, dtype=float)
    slope, intercept = _relative_lstsq(np.stack([x, np.ones_like(x)], axis=1), y)
    return float(slope), float(intercept)
