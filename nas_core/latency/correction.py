"""A small correction from the sum of per-op times to end-to-end latency, fitted on measurements.

Timing ops one at a time misses what a whole network adds or saves: the Python and dispatch
cost of calling each layer inside a network instead of from the timing loop, caches that hold
one op's weights and input but not the whole network's, the head's pooling. These are
systematic, so a linear model of a network's raw prediction (sum of its ops' medians) and its
number of executed layers captures them:

    latency ~= scale * raw_ms + per_layer_ms * layers + offset_ms

The candidate models (``none`` -- the raw sum --, ``offset``, ``scale+offset``,
``scale+offset+per-layer``) are fitted by least squares on relative error (every network counts
the same, whatever its size) and compared by k-fold cross-validation: the model kept is the
one whose error on networks it was NOT fitted on is lowest, so a correction is stored only when
it generalises. A fit whose scale leaves ``PLAUSIBLE_SCALE`` (the sum of ops off by more than a
factor of two) is not a correction but a sign that the timings are broken, and is never kept.
Fitting and scoring use numpy only; they run on synthetic timings in tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

PLAUSIBLE_SCALE = (0.5, 2.0)
MODELS: dict[str, tuple[str, ...]] = {
    "none": (),
    "offset": ("offset",),
    "scale+offset": ("scale", "offset"),
    "scale+offset+per-layer": ("scale", "offset", "per_layer"),
}


@dataclass(frozen=True)
class Correction:
    model: str = "none"
    scale: float = 1.0
    per_layer_ms: float = 0.0
    offset_ms: float = 0.0

    def apply(self, raw_ms: float | np.ndarray, layers: float | np.ndarray) -> float | np.ndarray:
        return self.scale * raw_ms + self.per_layer_ms * layers + self.offset_ms

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Correction":
        if data.get("model") not in MODELS:
            raise ValueError(f"unknown correction model {data.get('model')!r}")
        values = {k: float(data.get(k, default)) for k, default in (("scale", 1.0), ("per_layer_ms", 0.0), ("offset_ms", 0.0))}
        if not all(np.isfinite(v) for v in values.values()) or values["scale"] <= 0:
            raise ValueError("correction coefficients must be finite with a positive scale")
        return cls(data["model"], **values)


def abs_pct_errors(predicted: Sequence[float], measured: Sequence[float]) -> np.ndarray:
    predicted, measured = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    return np.abs(predicted - measured) / measured * 100


def error_summary(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    errors = abs_pct_errors(predicted, measured)
    signed = (np.asarray(predicted, dtype=float) - np.asarray(measured, dtype=float)) / np.asarray(measured, dtype=float) * 100
    return {
        "median_abs_pct": float(np.median(errors)),
        "max_abs_pct": float(errors.max()),
        "mean_abs_pct": float(errors.mean()),
        "median_signed_pct": float(np.median(signed)),
    }


def fit(model: str, raw_ms: Sequence[float], layers: Sequence[float], measured_ms: Sequence[float]) -> Correction:
    """Least squares on relative error: minimise sum(((prediction - measured) / measured)^2)."""
    terms = MODELS[model]
    if not terms:
        return Correction()
    raw, n, y = (np.asarray(v, dtype=float) for v in (raw_ms, layers, measured_ms))
    # prediction = base + X @ beta, where base is raw when the scale is not fitted
    base = np.zeros_like(raw) if "scale" in terms else raw.copy()
    columns = {"scale": raw, "offset": np.ones_like(raw), "per_layer": n}
    X = np.stack([columns[t] for t in terms], axis=1) / y[:, None]
    target = (y - base) / y
    beta, *_ = np.linalg.lstsq(X, target, rcond=None)
    values = dict(zip(terms, beta.tolist()))
    return Correction(model, scale=values.get("scale", 1.0), per_layer_ms=values.get("per_layer", 0.0), offset_ms=values.get("offset", 0.0))


def cross_validated(model: str, raw_ms: Sequence[float], layers: Sequence[float], measured_ms: Sequence[float], folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions: each network predicted by a correction fitted without it."""
    raw, n, y = (np.asarray(v, dtype=float) for v in (raw_ms, layers, measured_ms))
    order = np.random.default_rng(seed).permutation(len(y))
    predictions = np.empty_like(y)
    for k in range(folds):
        held = order[k::folds]
        kept = np.setdiff1d(order, held)
        correction = fit(model, raw[kept], n[kept], y[kept])
        predictions[held] = correction.apply(raw[held], n[held])
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
