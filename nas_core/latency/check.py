"""``nas latency check``: how well a table predicts the latency of whole networks.

Random distinct networks of the space are built standalone (as ``nas export`` ships them) and
timed end to end with the table's own protocol. Reported, against those measurements:

- the table's raw prediction (sum of per-op medians) and, when the table already holds a
  correction, the corrected prediction -- median and max absolute percentage error, Kendall tau;
- every correction model's cross-validated error (each network predicted by a fit that did not
  see it); the best one is fitted on all networks and stored in the table (unless ``fit`` is
  off), and its cross-validated error is the honest "after" number;
- MACs as the predictor: Kendall tau of MACs vs measured latency, and the error of the best
  linear map from MACs to milliseconds (also cross-validated), for comparison;
- a scatter plot of predicted vs measured (and MACs vs measured).

A stored correction is validated honestly by checking again (``fit=False``): the networks it
was fitted on are excluded from the new sample.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from scipy import stats

from nas_core.latency import correction as corr
from nas_core.latency.table import LatencyTable, LatencyTableError
from nas_core.latency.timing import Protocol, Timing, measure, prepare
from nas_core.spaces.space import SearchSpace
from nas_core.spaces.supernet import Arch


def protocol_of(table: LatencyTable) -> Protocol:
    try:
        return Protocol(**table.protocol)
    except TypeError as exc:
        raise LatencyTableError(f"{table.path}: corrupt latency table (protocol: {exc})") from None


def measure_networks(space: SearchSpace, archs: Sequence[Arch], protocol: Protocol, console: Console | None = None, progress: bool = True) -> list[Timing]:
    """End-to-end timings of standalone networks (freshly initialised, eval mode) with ``protocol``."""
    torch.manual_seed(0)
    supernet = space.build_supernet().eval()
    shape = (protocol.batch_size, 3, *space.input_size)
    with torch.no_grad():
        calls = [prepare(supernet.extract(arch), shape, protocol) for arch in archs]
    del supernet
    bar = Progress(TextColumn("[bold]measuring[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), console=console or Console(), disable=not progress)
    with bar:
        task = bar.add_task(f"{len(archs)} networks", total=len(archs))
        return measure(calls, protocol, progress=lambda i: bar.advance(task))


def _tau(a: Sequence[float], b: Sequence[float]) -> float:
    return float(stats.kendalltau(a, b).statistic)


def evaluate(table: LatencyTable, archs: Sequence[Arch], encoded: Sequence[str], macs: Sequence[int], measured: Sequence[Timing],
             seed: int, fit: bool = True) -> dict[str, Any]:
    """The report of a check from measurements (no timing here, so tests can feed synthetic ones)."""
    y = np.array([t.median_ms for t in measured])
    raw = np.array([table.raw_ms(a) for a in archs])
    layers = np.array([table.layers_run(a) for a in archs], dtype=float)
    macs_arr = np.array(macs, dtype=float)
    report: dict[str, Any] = {
        "networks": len(archs),
        "seed": seed,
        "raw": {**corr.error_summary(raw, y), "kendall_tau": _tau(raw, y)},
        "macs": {"kendall_tau": _tau(macs_arr, y),
                 **{f"linear_fit_cv_{k}": v for k, v in corr.error_summary(corr.affine_cross_validated(macs_arr, y), y).items()}},
        "measured_spread_median": float(np.median([t.spread for t in measured])),
    }
    stored = table.correction
    if table.data.get("correction"):  # a previous check chose it (possibly "none": the raw sum)
        predicted = stored.apply(raw, layers)
        fitted_on = (table.data.get("correction") or {}).get("fitted_on", {})
        report["stored_correction"] = {
            **stored.as_dict(), **corr.error_summary(predicted, y), "kendall_tau": _tau(predicted, y),
            "new_networks": not set(encoded) & set(fitted_on.get("archs", [])),
        }
    if fit:
        chosen, models = corr.select(raw, layers, y, seed=seed)
        cv = corr.cross_validated(chosen.model, raw, layers, y, seed=seed)
        report["fitted_correction"] = {
            **chosen.as_dict(), "margin_pct": corr.safety_margin_pct(cv, y), "cv_by_model": models,
            "cv": {**corr.error_summary(cv, y), "kendall_tau": _tau(cv, y)},
            "in_sample": {**corr.error_summary(chosen.apply(raw, layers), y), "kendall_tau": _tau(chosen.apply(raw, layers), y)},
        }
        report["_cv_predictions"] = cv.tolist()
    report["archs"] = [
        {"arch": e, "measured_ms": t.median_ms, "measured_p25_ms": t.p25_ms, "measured_p75_ms": t.p75_ms,
         "measured_wall_ms": t.wall_median_ms, "preempted": t.preempted, "raw_ms": float(r), "layers": int(n), "macs": int(m)}
        for e, t, r, n, m in zip(encoded, measured, raw, layers, macs)
    ]
    return report


def store_fit(table: LatencyTable, report: dict[str, Any]) -> bool:
    """Keep the fitted correction in the table (or none, when the raw sum was best). A fit whose
    safety margin reaches ``MAX_MARGIN_PCT`` comes from broken timings: it is not stored (the
    table keeps what it had) and the report says why. Returns whether it was stored."""
    fitted = report["fitted_correction"]
    if fitted["margin_pct"] >= corr.MAX_MARGIN_PCT:
        fitted["not_stored"] = (f"one network in ten measured {fitted['margin_pct']:.0f}% or more above its cross-validated prediction: "
                                "the timings are too noisy to correct (a quieter machine, more --repeats and --passes)")
        return False
    chosen = corr.Correction(fitted["model"], fitted["scale"], fitted["per_layer_ms"])
    table.set_correction(chosen, margin_pct=fitted["margin_pct"], fitted_on={
        "networks": report["networks"], "seed": report["seed"], "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cv_median_abs_pct": fitted["cv"]["median_abs_pct"], "cv_max_abs_pct": fitted["cv"]["max_abs_pct"],
        "archs": [a["arch"] for a in report["archs"]],
    })
    table.save()
    return True


def plot(report: dict[str, Any], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.array([a["measured_ms"] for a in report["archs"]])
    raw = np.array([a["raw_ms"] for a in report["archs"]])
    macs = np.array([a["macs"] for a in report["archs"]], dtype=float) / 1e6
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    lo, hi = min(y.min(), raw.min()) * 0.95, max(y.max(), raw.max()) * 1.05
    line = np.array([lo, hi])
    left.fill_between(line, line * 0.95, line * 1.05, color="0.9", label="within 5%")
    left.plot(line, line, c="0.4", lw=0.8)
    r = report["raw"]
    left.scatter(y, raw, s=12, c="C0", label=f"sum of ops: median {r['median_abs_pct']:.1f}%, max {r['max_abs_pct']:.1f}%, tau {r['kendall_tau']:.3f}")
    if "_cv_predictions" in report and report["fitted_correction"]["model"] != "none":
        cv = report["fitted_correction"]["cv"]
        left.scatter(y, report["_cv_predictions"], s=12, c="C3", marker="x",
                     label=f"+ correction (cross-val.): {cv['median_abs_pct']:.1f}%, max {cv['max_abs_pct']:.1f}%")
    left.set_xlabel("measured latency (ms)")
    left.set_ylabel("predicted latency (ms)")
    left.legend(fontsize=7, loc="upper left")
    right.scatter(macs, y, s=12, c="C2")
    right.set_xlabel("MMACs")
    right.set_ylabel("measured latency (ms)")
    right.set_title(f"MACs vs latency: tau {report['macs']['kendall_tau']:.3f}", fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def machine_state() -> dict[str, Any]:
    return {"loadavg": list(os.getloadavg()), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
