"""Latency tables against measured latency, and a latency-constrained search against MACs.

1. For NAS-Bench-Macro at width 1.0 (32x32) and the Scarlet ImageNet space (224x224):
   ``nas latency build`` (every op, batch 1, fixed threads), then ``nas latency check`` on 50
   random networks (seed 0: raw error, cross-validated correction fitted and stored), then a
   second check on 50 NEW networks (seed 1, no fitting): the stored correction's error on
   networks it never saw. MACs as the predictor beside it: Kendall tau of MACs vs measured
   latency and the cross-validated error of the best linear map MACs -> ms. Ablation on the
   seed-0 networks: a table of the same ops timed alone (``method="isolated"``). And the floor
   any predictor meets: the seed-0 networks measured a second time, minutes later.
2. On NAS-Bench-Macro, for latency budgets at quantiles of the space's predicted latency:
   evolutionary search under ``max_latency_ms`` vs the same search under the same budget
   expressed in MACs (``max_flops``, through the linear MACs -> ms map fitted in step 1). Each
   predictor is used the same way: with the safety margin its own cross-validated errors give
   (90% of networks measure below prediction + margin). The
   scorer is the benchmark's ground-truth accuracy used as an ORACLE -- not something a real
   search has -- so that the only difference between the two searches is the constraint: how
   much accuracy each constraint leaves reachable, and whether its pick really runs within the
   budget. Both picks are measured end to end with the table's protocol; the exhaustive
   optimum under each constraint (all 3,969 distinct networks) is shown as a reference.

Every timing is taken through the heavy queue on a machine without other heavy jobs; load
averages and every other process using more than 5% of a core, before and after each phase,
are in the result.

    python benchmarks/heavy_queue.py run -- python benchmarks/bench_latency.py [--threads 1]
    python benchmarks/bench_latency.py --quick      # tiny protocol, for the test suite
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS, cpu_ticks, make_run, write_result  # noqa: E402

from nas_core.components.searchers import EvolutionOptions, EvolutionSearcher  # noqa: E402
from nas_core.config import ConstraintsConfig  # noqa: E402
from nas_core.ground_truth import load_table  # noqa: E402
from nas_core.latency import correction as corr  # noqa: E402
from nas_core.latency import runs  # noqa: E402
from nas_core.latency.check import evaluate, measure_networks, protocol_of  # noqa: E402
from nas_core.latency.table import LatencyTable  # noqa: E402
from nas_core.latency.timing import Protocol, Timing  # noqa: E402
from nas_core.search_result import SearchProblem  # noqa: E402

SCARLET_CONFIG = REPO / "plugins" / "nas-scarlet" / "configs" / "scarlet-imagenet.yaml"
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def load(window: float = 1.0) -> dict:
    """What else was running: load averages and every other process that used more than 5% of
    a core over a one-second window (measured, not averaged over the process's lifetime)."""
    before = cpu_ticks()
    time.sleep(window)
    after = cpu_ticks()
    hz = os.sysconf("SC_CLK_TCK")
    others = sorted(((ticks - before[pid][0]) / hz / window * 100, cmd) for pid, (ticks, cmd, _policy) in after.items()
                    if pid in before and pid != os.getpid())
    return {"loadavg": [round(v, 2) for v in os.getloadavg()],
            "other_processes_over_5pct": [f"{pct:.0f}% {cmd}" for pct, cmd in reversed(others) if pct > 5]}


def space_study(name: str, run, protocol: Protocol, folder: Path, num_archs: int) -> dict:
    """Build the table (and, as an ablation, one of ops timed alone), check it on seed 0 (fit),
    validate the stored correction on seed 1 (networks disjoint from seed 0's)."""
    table_path, isolated_path = folder / f"{name}.json", folder / f"{name}-isolated.json"
    before = load()
    runs.build(run, protocol, str(table_path), overwrite=True, progress=False)
    runs.build(run, dataclasses.replace(protocol, method="isolated"), str(isolated_path), overwrite=True, progress=False)
    after_build = load()
    fit = runs.check(run, str(table_path), num_archs, seed=0, fit=True, out=str(folder / f"{name}-seed0"), progress=False)
    validate = runs.check(run, str(table_path), num_archs, seed=1, fit=False, out=str(folder / f"{name}-seed1"), progress=False)
    table = LatencyTable.load(table_path)
    # how repeatable the measurement itself is: the seed-0 networks measured again, minutes later
    again = measure_networks(run.space, [run.space.decode(a["arch"]) for a in fit["archs"]], protocol, progress=False)
    first, second = np.array([a["measured_ms"] for a in fit["archs"]]), np.array([t.median_ms for t in again])
    repeat = {"kendall_tau": float(stats.kendalltau(first, second).statistic),
              **{k: v for k, v in corr.error_summary(second, first).items() if k != "mean_abs_pct"}}
    # the ablation, on the very same measured networks: ops timed alone instead of inside networks
    measured = [Timing(a["measured_ms"], a["measured_p25_ms"], a["measured_p75_ms"], 0) for a in fit["archs"]]
    archs = [run.space.decode(a["arch"]) for a in fit["archs"]]
    isolated = evaluate(LatencyTable.load(isolated_path), archs, [a["arch"] for a in fit["archs"]], [a["macs"] for a in fit["archs"]], measured, seed=0)
    summary = {
        "table": str(table_path.relative_to(REPO)) if table_path.is_relative_to(REPO) else str(table_path),
        "key": table.key,
        "fastest_ms": table.bounds()[0], "slowest_ms": table.bounds()[1],
        "correction": table.correction.as_dict(),
        "fit_seed0": {k: fit[k] for k in ("raw", "fitted_correction", "macs", "measured_spread_median")},
        "remeasured_seed0": repeat,
        "isolated_ops_seed0": {"raw": isolated["raw"], "fitted_correction": {k: isolated["fitted_correction"][k] for k in ("model", "scale", "per_layer_ms", "cv")}},
        "validate_seed1": {k: validate[k] for k in ("raw", "stored_correction", "macs", "measured_spread_median")},
        "loadavg": {"before_build": before, "after_build": after_build, "check_seed0": fit["machine"], "check_seed1": validate["machine"]},
        "archs_seed0": fit["archs"], "archs_seed1": validate["archs"],
    }
    return summary


def macs_to_ms(archs: list[dict]) -> tuple[float, float, float]:
    """MACs used as the latency predictor, exactly as the table is used: (ms per MAC, ms) of the
    least-squares (relative error) line MACs -> measured ms, and its safety margin (90th
    percentile of its cross-validated under-prediction), all from the same seed-0 networks."""
    macs, measured = [a["macs"] for a in archs], [a["measured_ms"] for a in archs]
    slope, intercept = corr.affine_fit(macs, measured)
    return slope, intercept, corr.safety_margin_pct(corr.affine_cross_validated(macs, measured), measured)


def search_comparison(run, table: LatencyTable, macs_map: tuple[float, float, float], protocol: Protocol, population: int, generations: int, quantiles) -> dict:
    """Evolution under max_latency_ms vs under the same budget in MACs, scored by the ground-truth oracle."""
    space = run.space
    truth = load_table()
    every = sorted({space.canonical(a) for a in _all_archs(space)})
    predicted = np.array([table.predict_ms(a) for a in every])
    macs = np.array([space.complexity(a)[0] for a in every], dtype=float)
    accuracy = np.array([truth[space.encode(a)].mean_acc for a in every])

    def oracle(archs):
        return [truth[space.encode(a)].mean_acc for a in archs]

    rows, to_measure = [], []
    for q in quantiles:
        budget_ms = float(np.quantile(predicted, q))
        budget_macs = (budget_ms / (1 + macs_map[2] / 100) - macs_map[1]) / macs_map[0]
        picks = {}
        for kind, constraints in (("latency", ConstraintsConfig(max_latency_ms=budget_ms)), ("macs", ConstraintsConfig(max_flops=budget_macs))):
            problem = SearchProblem(space, oracle, constraints, seed=0, latency=table)
            result = EvolutionSearcher(run.context, EvolutionOptions(population=population, generations=generations)).search(problem)
            feasible = predicted * table.margin_factor <= budget_ms if kind == "latency" else macs <= budget_macs
            optimum = every[int(np.argmax(np.where(feasible, accuracy, -1)))]
            picks[kind] = {"arch": result.best.arch, "ground_truth_acc": truth[result.best.arch].mean_acc, "macs": result.best.macs,
                           "predicted_ms": table.predict_ms(space.decode(result.best.arch)), "evaluated": len(result.history),
                           "optimum_arch": space.encode(optimum), "optimum_acc": truth[space.encode(optimum)].mean_acc}
            to_measure.append(space.decode(result.best.arch))
        rows.append({"quantile": q, "budget_ms": budget_ms, "budget_macs": budget_macs, **picks})
    timings = measure_networks(space, to_measure, protocol, progress=False)
    for i, row in enumerate(rows):
        for j, kind in enumerate(("latency", "macs")):
            t = timings[2 * i + j]
            row[kind].update(measured_ms=t.median_ms, measured_p25_ms=t.p25_ms, measured_p75_ms=t.p75_ms, within_budget=t.median_ms <= row["budget_ms"])
        row["latency_pick_is"] = verdict(row["latency"], row["macs"])
    return {"rows": rows, "space_predicted_ms": predicted.tolist(), "space_accuracy": accuracy.tolist()}


def verdict(lat: dict, mac: dict) -> str:
    """How the latency-limited pick compares with the MACs-budget pick: ground-truth accuracy
    first, then measured speed; a pick is only better when it also kept its limit."""
    if lat["arch"] == mac["arch"]:
        return "the same network"
    if lat["within_budget"] and not mac["within_budget"]:
        return "within budget where the MACs pick is not"
    gain = lat["ground_truth_acc"] - mac["ground_truth_acc"]
    faster = lat["measured_ms"] < mac["measured_ms"]
    accuracy = f"more accurate ({gain:+.2f})" if gain > 0 else f"less accurate ({gain:+.2f})" if gain < 0 else "as accurate"
    return f"{accuracy} and {'faster' if faster else 'slower'}"


def _all_archs(space):
    from itertools import product

    return product(*[range(n) for n in space.num_choices])


def plot_search(comparison: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    ax.scatter(comparison["space_predicted_ms"], comparison["space_accuracy"], s=3, c="0.8", label="all 3,969 networks (predicted latency)")
    for i, row in enumerate(comparison["rows"]):
        ax.axvline(row["budget_ms"], c="0.5", lw=0.6, ls=":")
        for kind, marker, color in (("latency", "o", "C3"), ("macs", "s", "C0")):
            pick = row[kind]
            ax.scatter(pick["measured_ms"], pick["ground_truth_acc"], marker=marker, s=36, c=color, edgecolors="k", linewidths=0.5,
                       label=(f"max_latency_ms pick (measured)" if kind == "latency" else "same budget as max_flops pick (measured)") if i == 0 else None)
    ax.set_xlabel("latency (ms); dotted: budgets")
    ax.set_ylabel("NAS-Bench-Macro ground-truth accuracy (%)")
    ax.set_ylim(min(comparison["space_accuracy"]) + 0.8 * (max(comparison["space_accuracy"]) - min(comparison["space_accuracy"])) - 2, None)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny protocol, 10 networks, Scarlet at 64x64 (about a minute)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", default="thread", help="thread (CPU time of the calling thread: immune to other processes; 1 thread) or wall")
    parser.add_argument("--num-archs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--skip-scarlet", action="store_true")
    args = parser.parse_args()
    quick = args.quick
    protocol = Protocol(threads=args.threads, clock=args.clock, repeats=5 if quick else args.repeats, warmup=1 if quick else 10,
                        warmup_seconds=0.0 if quick else 0.05, passes=1 if quick else 10)
    num_archs = 10 if quick else args.num_archs
    folder = Path(tempfile.mkdtemp()) if quick else RESULTS / "latency"
    folder.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    result: dict = {"protocol": protocol.as_dict(), "num_archs": num_archs, "loadavg_start": load()}

    scratch = Path(tempfile.mkdtemp())
    nbm = make_run(scratch / "nbm", ["space.width=1.0", "device=cpu"])
    result["nas_bench_macro"] = space_study("nas-bench-macro-w1", nbm, protocol, folder, num_archs)
    if not args.skip_scarlet:
        scarlet_overrides = ["device=cpu"] + (["space.input_size=64"] if quick else [])
        scarlet = make_run(scratch / "scarlet", scarlet_overrides, SCARLET_CONFIG)
        result["scarlet"] = space_study("scarlet-imagenet-224" if not quick else "scarlet-imagenet-64", scarlet, protocol, folder, num_archs)

    table = LatencyTable.load(folder / "nas-bench-macro-w1.json")
    macs_map = macs_to_ms(result["nas_bench_macro"]["archs_seed0"])
    comparison = search_comparison(nbm, table, macs_map, protocol_of(table), population=8 if quick else 20,
                                   generations=3 if quick else 15, quantiles=(0.25, 0.75) if quick else QUANTILES)
    plot_name = "latency-search-quick.png" if quick else "latency-search.png"
    plot_search(comparison, RESULTS / plot_name)
    result["search_comparison"] = {"scorer": "ground-truth oracle (NAS-Bench-Macro mean accuracy), to isolate the constraint",
                                   "macs_to_ms": {"ms_per_mmac": macs_map[0] * 1e6, "ms": macs_map[1], "margin_pct": macs_map[2]},
                                   "table_margin_pct": table.margin_pct, "rows": comparison["rows"], "plot": f"benchmarks/results/{plot_name}"}
    result["loadavg_end"] = load()
    if not quick:
        for name in ("nas-bench-macro-w1", "scarlet-imagenet-224"):
            for seed in (0, 1):
                png = folder / f"{name}-seed{seed}-check.png"
                if png.is_file():
                    shutil.copy(png, RESULTS / f"latency-{name}-seed{seed}.png")
    _print_summary(result)
    path = write_result("latency", result, quick)
    print(f"-> {path}")


def _print_summary(result: dict) -> None:
    for key in ("nas_bench_macro", "scarlet"):
        if key not in result:
            continue
        s = result[key]
        f, v = s["fit_seed0"], s["validate_seed1"]
        stored = v.get("stored_correction", {})
        print(f"{key}: sum of ops median/max |err| {f['raw']['median_abs_pct']:.2f}/{f['raw']['max_abs_pct']:.2f}% tau {f['raw']['kendall_tau']:.3f}; "
              f"correction {f['fitted_correction']['model']} cross-val {f['fitted_correction']['cv']['median_abs_pct']:.2f}/{f['fitted_correction']['cv']['max_abs_pct']:.2f}%; "
              f"new networks: raw {v['raw']['median_abs_pct']:.2f}/{v['raw']['max_abs_pct']:.2f}% tau {v['raw']['kendall_tau']:.3f}, "
              f"corrected {stored.get('median_abs_pct', float('nan')):.2f}/{stored.get('max_abs_pct', float('nan')):.2f}% tau {stored.get('kendall_tau', float('nan')):.3f}; "
              f"MACs tau {v['macs']['kendall_tau']:.3f}, MACs linear fit {v['macs']['linear_fit_cv_median_abs_pct']:.2f}/{v['macs']['linear_fit_cv_max_abs_pct']:.2f}%; "
              f"same networks measured twice: |diff| {s['remeasured_seed0']['median_abs_pct']:.2f}/{s['remeasured_seed0']['max_abs_pct']:.2f}%, tau {s['remeasured_seed0']['kendall_tau']:.3f}; "
              f"ablation, ops timed alone: {s['isolated_ops_seed0']['raw']['median_abs_pct']:.2f}/{s['isolated_ops_seed0']['raw']['max_abs_pct']:.2f}%, "
              f"corrected {s['isolated_ops_seed0']['fitted_correction']['cv']['median_abs_pct']:.2f}/{s['isolated_ops_seed0']['fitted_correction']['cv']['max_abs_pct']:.2f}%")
    for row in result["search_comparison"]["rows"]:
        lat, mac = row["latency"], row["macs"]
        print(f"budget {row['budget_ms']:.3f} ms (= {row['budget_macs'] / 1e6:.1f} MMACs): latency pick {lat['arch']} {lat['ground_truth_acc']:.2f}% "
              f"{lat['measured_ms']:.3f} ms | MACs pick {mac['arch']} {mac['ground_truth_acc']:.2f}% {mac['measured_ms']:.3f} ms -> {row['latency_pick_is']}")


if __name__ == "__main__":
    main()
