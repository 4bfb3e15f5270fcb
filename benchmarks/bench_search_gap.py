"""Is the search budget enough? How close a config's search comes to its own evaluator's optimum.

A search can miss a good network for two reasons: its evaluator ranks the network low, or the
searcher never evaluated it. This script separates them for a config whose evaluator is
training-free (default: the main job, ``configs/quickstart.yaml``). It scores EVERY distinct
network of NAS-Bench-Macro with the config's evaluator (cached, resumable), then runs the
config's searcher under each of the study's three MACs limits with several search seeds and
several budgets (population x generations), each candidate's score looked up in the cache, and
reports:

- label-free: where the pick sits among all feasible networks BY THE EVALUATOR'S OWN SCORE (its
  score percentile, whether it is the score's argmax) and the evaluations spent. A search that
  misses its evaluator's top is under-budgeted; one that finds it cannot gain by searching
  longer, only from a better evaluator. The budget is chosen on this alone: the smallest budget
  whose every pick (all limits, seeds and evaluator seeds) is the score's argmax;
- measured only (NAS-Bench-Macro ground truth): the ground-truth percentile of each pick among
  the feasible networks, of the score's argmax, and the mean ground-truth percentile of the
  score's top 10, i.e. what the evaluator's top is worth when the search is perfect.

    python benchmarks/bench_search_gap.py        # -> benchmarks/results/search_gap.json (~6 min: NASWOT on 3,969 networks x 2 seeds)
    python benchmarks/bench_search_gap.py --quick  # structural evaluator (depth + MACs), the lowest limit (seconds of CPU)

Scores are cached per evaluator seed in ``runs/search_gap/`` (``--quick``: ``runs/search_gap-quick/``; ``--runs``
moves it); the seconds and the load average before and after say what else shared the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, write_result  # noqa: E402

from nas_core.checked_json import write_json_atomic  # noqa: E402
from nas_core.config import ConstraintsConfig, load_config  # noqa: E402
from nas_core.errors import NasError  # noqa: E402
from nas_core.ground_truth import load_table  # noqa: E402
from nas_core.outcome import feasible_networks, percentile_of  # noqa: E402
from nas_core.ranking import distinct_networks  # noqa: E402
from nas_core.run import Run  # noqa: E402
from nas_core.search_result import SearchProblem  # noqa: E402

LIMITS = REPO / "benchmarks" / "results" / "study" / "samples.json"
CHUNK = 50
QUICK_EVALUATOR = ["evaluator={name: rank-fusion, reference_size: 16, members: [{weight: 1.0, evaluator: {name: depth}}, {weight: 0.5, evaluator: {name: macs}}]}"]


def build_run(config: Path, seed: int, run_dir: Path, overrides: Sequence[str]) -> Run:
    base = [f"seed={seed}", f"run_dir={run_dir}", "train.progress=false", "train.tensorboard=false"]
    try:
        run = Run.create(load_config(config, base + list(overrides)))
    except NasError as exc:
        raise SystemExit(f"error: {exc}") from None
    if run.config.space.name != "nas-bench-macro":
        raise SystemExit(f"error: {config}: space '{run.config.space.name}': bench_search_gap.py judges picks by NAS-Bench-Macro's ground truth; use a nas-bench-macro config")
    if run.evaluator.reads_supernet:
        raise SystemExit(f"error: {config}: evaluator '{run.config.evaluator.name}' reads a trained supernet; bench_search_gap.py scores every network, "
                         "which only a training-free evaluator can afford")
    return run


def score_everything(run: Run, networks: list, cache_path: Path) -> dict[str, float]:
    """Every network's score under the run's evaluator, encoded network -> score; saved every
    chunk, so a killed run continues where it stopped."""
    space = run.space
    scores: dict[str, float] = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    todo = [a for a in networks if space.encode(a) not in scores]
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        scores.update({space.encode(a): float(s) for a, s in zip(chunk, run.evaluator.evaluate(run.supernet, chunk))})
        write_json_atomic(scores, cache_path)
        print(f"[search-gap] scored {len(scores)} / {len(networks)}", file=sys.stderr, flush=True)
    return scores


def search_once(space, searcher, scores: dict[str, float], max_macs: float, seed: int) -> tuple[str, int]:
    """One search under a MACs limit, every score read from ``scores``: (the pick, evaluations spent)."""
    evaluate = lambda archs: [scores[space.encode(space.canonical(a))] for a in archs]  # noqa: E731
    problem = SearchProblem(space, evaluate, ConstraintsConfig(max_flops=max_macs), seed)
    result = searcher.search(problem)
    return space.encode(space.canonical(space.decode(result.best.arch))), len(problem.history)


def limit_report(space, scores: dict[str, float], truth: dict[str, float], max_macs: float) -> dict[str, Any]:
    """The feasible networks' scores and ground truth under one limit, and what the score's top is worth."""
    networks = feasible_networks(space, truth, lambda a: space.complexity(a)[0] <= max_macs)
    feasible, accs = [space.encode(a) for a in networks.archs], networks.accs
    score = np.array([scores[k] for k in feasible])
    order = np.argsort(-score, kind="stable")
    top = [feasible[i] for i in order[:10]]
    argmax = feasible[int(order[0])]
    return {"feasible": feasible, "score_values": score.tolist(), "accs": accs, "argmax": argmax,
            "argmax_gt_percentile": percentile_of(truth[argmax], accs),
            "top10_mean_gt_percentile": float(np.mean([percentile_of(truth[k], accs) for k in top])),
            "ties_at_top": int(np.sum(score == score[order[0]]))}


def parse_budgets(text: str) -> list[tuple[int, int]]:
    """'16x8,32x16' -> [(16, 8), (32, 16)] (population x generations), or one argparse error line."""
    try:
        budgets = [tuple(int(x) for x in b.split("x")) for b in text.split(",")]
    except ValueError:
        budgets = []
    if not budgets or any(len(b) != 2 or min(b) < 2 for b in budgets):
        raise argparse.ArgumentTypeError(f"{text!r}: expected population x generations, e.g. 16x8,32x16 (each at least 2)")
    return budgets


def study_agreement(scores: dict[str, float], config: Path, seed: int) -> float | None:
    """Largest difference between these scores and the ranking study's stored scores of the same
    networks for the main job (method ``quickstart``, same seed): 0 means the cache holds exactly
    what the study measured. None for another config or when the study has no such record."""
    record = LIMITS.parent / "methods" / f"quickstart-s{seed}.json"
    if config.resolve() != (REPO / "configs" / "quickstart.yaml").resolve() or not record.is_file():
        return None
    stored = json.loads(record.read_text())
    keys = json.loads(LIMITS.read_text())["tuning"]
    return float(max(abs(scores[k] - v) for k, v in zip(keys, stored["scores"]["tuning"])))


def chosen_budget(summary: list[dict[str, Any]]) -> list[int] | None:
    """The label-free choice: the smallest budget (``summarize``'s rows, in the order given) whose
    every search found the score's argmax (every evaluator seed, limit and search seed); None
    when none did."""
    return next(([row["population"], row["generations"]] for row in summary if row["argmax_found"] == row["searches"]), None)


def summarize(per_seed: dict[str, Any], budgets: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Per budget, over every evaluator seed, limit and search seed."""
    out = []
    for population, generations in budgets:
        rows = [r for s in per_seed.values() for lim in s["limits"].values() for r in lim["searches"]
                if (r["population"], r["generations"]) == (population, generations)]
        out.append({"population": population, "generations": generations, "searches": len(rows),
                    "mean_evaluations": float(np.mean([r["evaluations"] for r in rows])),
                    "argmax_found": int(sum(r["is_argmax"] for r in rows)),
                    "mean_score_percentile": float(np.mean([r["score_percentile"] for r in rows])),
                    "mean_gt_percentile": float(np.mean([r["gt_percentile"] for r in rows])),
                    "min_gt_percentile": float(np.min([r["gt_percentile"] for r in rows]))})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "quickstart.yaml")
    parser.add_argument("--evaluator-seeds", default="0,1", help="seeds of the evaluator (NASWOT's initialisation, fusion reference)")
    parser.add_argument("--search-seeds", type=int, default=10, help="search seeds per budget")
    parser.add_argument("--budgets", type=parse_budgets, default="16x8,32x16,64x32", help="population x generations of the evolution searcher")
    parser.add_argument("--quick", action="store_true", help="structural evaluator (depth + MACs), the lowest limit, 2 search seeds")
    parser.add_argument("--runs", type=Path, help="where the score caches go (default runs/search_gap[-quick])")
    parser.add_argument("--out", type=Path, help="the result file (default benchmarks/results/search_gap[-quick].json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2 if not args.quick else 1)
    quick = args.quick
    runs = args.runs or REPO / "runs" / ("search_gap-quick" if quick else "search_gap")
    runs.mkdir(parents=True, exist_ok=True)
    overrides = QUICK_EVALUATOR if quick else []
    budgets = args.budgets
    search_seeds = range(2 if quick else args.search_seeds)
    limits = json.loads(LIMITS.read_text())["limits"][: 1 if quick else None]
    truth = {k: r.mean_acc for k, r in load_table(None).items()}

    started, load_before = time.perf_counter(), os.getloadavg()
    per_seed = {}
    for evaluator_seed in [int(s) for s in args.evaluator_seeds.split(",")]:
        run = build_run(args.config, evaluator_seed, runs / f"eval-s{evaluator_seed}", overrides)
        networks = distinct_networks(run.space)
        scored_at = time.perf_counter()
        scores = score_everything(run, networks, runs / f"scores-s{evaluator_seed}.json")
        score_seconds = time.perf_counter() - scored_at
        by_limit = {}
        for limit in limits:
            judged = limit_report(run.space, scores, truth, limit["max_macs"])
            rows = []
            for population, generations in budgets:
                searcher = build_run(args.config, evaluator_seed, runs / f"eval-s{evaluator_seed}",
                                     overrides + [f"search.searcher.population={population}", f"search.searcher.generations={generations}"]).searcher
                for search_seed in search_seeds:
                    pick, evaluations = search_once(run.space, searcher, scores, limit["max_macs"], search_seed)
                    rows.append({"population": population, "generations": generations, "search_seed": search_seed, "pick": pick,
                                 "evaluations": evaluations, "is_argmax": scores[pick] == scores[judged["argmax"]],
                                 "score_percentile": percentile_of(scores[pick], judged["score_values"]),
                                 "gt_percentile": percentile_of(truth[pick], judged["accs"])})
            by_limit[str(limit["quantile"])] = {"max_macs": limit["max_macs"], "feasible": len(judged["feasible"]), "argmax": judged["argmax"],
                                                "argmax_gt_percentile": judged["argmax_gt_percentile"], "ties_at_top": judged["ties_at_top"],
                                                "top10_mean_gt_percentile": judged["top10_mean_gt_percentile"], "searches": rows}
        per_seed[str(evaluator_seed)] = {"score_seconds": score_seconds, "networks": len(networks), "limits": by_limit,
                                         "max_difference_from_study_scores": study_agreement(scores, args.config, evaluator_seed)}

    summary = summarize(per_seed, budgets)
    chosen = chosen_budget(summary)
    path = write_result("search_gap", {"config": str(args.config.relative_to(REPO)) if args.config.is_relative_to(REPO) else str(args.config),
                                       "seconds": time.perf_counter() - started,
                                       "load_avg_before": list(load_before), "load_avg_after": list(os.getloadavg()), "budgets": summary,
                                       "chosen_budget": chosen, "per_evaluator_seed": per_seed},
                        quick, args.out)
    for row in summary:
        print(f"budget {row['population']}x{row['generations']}: {row['mean_evaluations']:.0f} evaluations, argmax found "
              f"{row['argmax_found']}/{row['searches']}, mean score pct {row['mean_score_percentile']:.2f}, mean GT pct {row['mean_gt_percentile']:.2f}")
    print(f"chosen (label-free: the smallest budget that always found the score's argmax): {chosen}")
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
