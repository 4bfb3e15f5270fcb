"""Cream vs SPOS on NAS-Bench-Macro (real CIFAR-10): does distilling prioritized paths help?

Both supernets (width-0.25 NAS-Bench-Macro, a stratified CIFAR-10 subset) are trained with the
same budget (optimiser steps x batch), seed, data order, learning-rate schedule AND the same
sequence of sampled paths (Cream's sampler with the uniform prior draws exactly the built-in
uniform sampler's paths), so the only difference is Cream's board, meta-matching network and
distillation loss after its warm-up. Then, for each supernet:

- ranking: BN-recalibrated validation accuracy of the same 200 distinct architectures against
  the table's ground truth -- Kendall tau with a bootstrap 95% CI, Spearman, tau inside
  equal-identity groups (``nas_core.ranking``);
- the architecture each method returns -- SPOS: evolutionary search on its supernet; Cream:
  the top board entry (no search), plus, for reference, the same evolutionary search on the
  Cream supernet -- with its ground-truth accuracy and rank among the 3,969 distinct networks.

    python benchmarks/bench_cream.py [--quick] [--steps 600] [--num-archs 200]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_run, write_result  # noqa: E402

from nas_core.components.searchers import EvolutionOptions, EvolutionSearcher  # noqa: E402
from nas_core.config import ConstraintsConfig  # noqa: E402
from nas_core.ground_truth import load_table  # noqa: E402
from nas_core.ranking import paired_difference, rank_statistics, sample_distinct  # noqa: E402
from nas_core.search_result import SearchProblem  # noqa: E402
from nas_core.spaces.nas_bench_macro import nas_bench_macro  # noqa: E402
from nas_core.trainer import Trainer  # noqa: E402


def ground_truth_ranks(table) -> tuple[dict[str, int], int]:
    """Rank (1 = best) of every key among the distinct networks (equivalent keys share a rank)."""
    space = nas_bench_macro()
    distinct = {space.encode(space.canonical(space.decode(k))) for k in table}
    accs = sorted((table[k].mean_acc for k in distinct), reverse=True)
    rank = {}
    for key in table:
        acc = table[key].mean_acc
        rank[key] = 1 + sum(a > acc for a in accs)
    return rank, len(distinct)


def overrides_for(method: str, args) -> list[str]:
    common = [
        f"space.width={args.width}", f"train.batch_size={args.batch_size}", f"train.max_steps={args.steps}",
        f"data.train_subset={args.train_subset}", f"data.val_subset={args.val_subset}", f"seed={args.seed}",
        f"evaluator.bn_recal_batches={args.bn_batches}", "evaluator.batch_size=250", f"train.optimizer.lr={args.lr}",
        f"train.scheduler.warmup_steps={min(50, args.steps // 10)}", f"train.log_every_steps={max(1, args.steps // 20)}",
    ]
    if method == "spos":
        return common + ["sampler.name=uniform"]
    return common + [
        "plugins.enable=[cream]", "sampler={name: cream, prior: uniform}",
        f"teacher={{name: cream, board_size: 10, acc_gap: 5.0, meta_update_every: {args.meta_every}}}",
        "regularizers=[{name: cream}]", f"cream.warmup_steps={args.warmup}",
    ]


def describe(key: str, table, ranks, n_distinct) -> dict:
    return {"arch": key, "ground_truth": table[key].mean_acc, "rank": ranks[key], "of": n_distinct,
            "top_percent": 100.0 * ranks[key] / n_distinct, "mflops": table[key].flops / 1e6}


def evolution(run, args, cache: dict) -> str:
    problem = SearchProblem(run.space, lambda archs: run.evaluator.evaluate(run.supernet, archs), ConstraintsConfig(), args.seed)
    problem.cache.update(cache)  # the ranking sample was already scored by the same evaluator
    result = EvolutionSearcher(run.context, EvolutionOptions(population=args.population, generations=args.generations)).search(problem)
    return result.best.arch


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def train_and_evaluate(method: str, args, archs, truth, groups, table, ranks, n_distinct, tmp: Path) -> dict:
    run = make_run(tmp / method, overrides_for(method, args))
    start = time.perf_counter()
    log(f"{method}: training {args.steps} steps")
    Trainer(run).fit()
    train_seconds = time.perf_counter() - start
    log(f"{method}: trained in {train_seconds:.0f} s; scoring {len(archs)} architectures")
    start = time.perf_counter()
    scores = run.evaluator.evaluate(run.supernet, archs)
    eval_seconds = time.perf_counter() - start
    report = rank_statistics(scores, truth, groups, args.bootstrap, args.seed, (10, 20))
    log(f"{method}: scored in {eval_seconds:.0f} s; evolutionary search")
    start = time.perf_counter()
    searched = evolution(run, args, {run.space.canonical(a): s for a, s in zip(archs, scores)})
    search_seconds = time.perf_counter() - start
    out = {
        "train_seconds": train_seconds, "eval_seconds": eval_seconds, "search_seconds": search_seconds,
        "train_curve": [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines() if line],
        **report, "scores": scores, "evolution": describe(searched, table, ranks, n_distinct),
    }
    if method == "cream":
        teacher = run.teacher
        board = [describe(run.space.encode(e.arch), table, ranks, n_distinct) | {"board_acc": e.acc, "admitted_step": e.step} for e in teacher.board]
        out.update(returned=board[0], board=board, meta_updates=teacher.meta_updates, last_meta=teacher.last_meta)
    else:
        out["returned"] = out["evolution"]
    return out


def worker(threads: int, job: tuple) -> dict:
    torch.set_num_threads(threads)
    return train_and_evaluate(*job)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps per method")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=None, help="Cream warm-up steps (default: a sixth of the steps)")
    parser.add_argument("--meta-every", type=int, default=40)
    parser.add_argument("--num-archs", type=int, default=200)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--train-subset", type=int, default=20_000)
    parser.add_argument("--val-subset", type=int, default=500)
    parser.add_argument("--bn-batches", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--population", type=int, default=10)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per method")
    parser.add_argument("--serial", action="store_true", help="train the two methods one after the other (default: in two processes)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size, args.meta_every, args.num_archs = 24, 32, 4, 12
        args.train_subset, args.val_subset, args.bn_batches, args.bootstrap = 1000, 250, 1, 100
        args.population, args.generations = 4, 2
    args.warmup = args.warmup if args.warmup is not None else args.steps // 6
    torch.set_num_threads(args.threads)

    table = load_table()
    ranks, n_distinct = ground_truth_ranks(table)
    space = nas_bench_macro()
    archs = sample_distinct(space, args.num_archs, seed=args.seed)
    keys = [space.encode(a) for a in archs]
    truth = [table[k].mean_acc for k in keys]
    groups = [space.num_identities(a) for a in archs]
    flops_tau = float(stats.kendalltau([table[k].flops for k in keys], truth).statistic)
    methods = {}
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(m, args, archs, truth, groups, table, ranks, n_distinct, Path(tmp)) for m in ("spos", "cream")]
        if args.serial or args.quick:
            for job in jobs:
                methods[job[0]] = train_and_evaluate(*job)
        else:  # independent runs; the same result as serial, in about half the wall time on 2 cores
            with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {job[0]: pool.submit(worker, args.threads, job) for job in jobs}
                methods = {m: f.result() for m, f in futures.items()}
    spos, cream = methods["spos"], methods["cream"]
    paired = paired_difference(cream["scores"], spos["scores"], truth, resamples=args.bootstrap, seed=args.seed)
    difference, difference_ci = paired["difference"], list(paired["ci95"])
    result = {"settings": vars(args), "archs": keys, "flops_tau": flops_tau, "methods": methods,
              "tau_difference_cream_minus_spos": difference, "tau_difference_ci95_paired_bootstrap": difference_ci,
              "train_time_ratio_cream_over_spos": cream["train_seconds"] / spos["train_seconds"]}
    path = write_result("cream", result, args.quick)
    print(f"{args.num_archs} distinct architectures; {args.steps} steps x batch {args.batch_size} per method, width {args.width}, "
          f"seed {args.seed}; Cream warm-up {args.warmup} steps, meta update every {args.meta_every}")
    for name, r in methods.items():
        lo, hi = r["kendall_tau_ci95"]
        print(f"  {name:6s} tau {r['kendall_tau']:.3f} [95% CI {lo:.3f}, {hi:.3f}]  spearman {r['spearman_rho']:.3f}  "
              f"tau in equal-identity groups {r['group_tau_weighted_mean']:.3f}  ({r['train_seconds']:.0f} s train, {r['eval_seconds']:.0f} s eval)")
    for name, r in methods.items():
        ret = r["returned"]
        print(f"  {name:6s} returns {ret['arch']}: ground truth {ret['ground_truth']:.2f}%, rank {ret['rank']} of {ret['of']} "
              f"(top {ret['top_percent']:.1f}%)" + ("  [top board entry]" if name == "cream" else "  [evolution]"))
    ev = cream["evolution"]
    print(f"  cream supernet + evolution: {ev['arch']} ground truth {ev['ground_truth']:.2f}%, rank {ev['rank']}")
    print(f"  FLOPs alone: tau {flops_tau:.3f}.  Cream - SPOS tau {difference:+.3f} [paired 95% CI {difference_ci[0]:+.3f}, {difference_ci[1]:+.3f}]; "
          f"Cream train time x{result['train_time_ratio_cream_over_spos']:.2f} -> {path}")


if __name__ == "__main__":
    main()
