"""Ranking quality of SPOS and FairNAS supernets on NAS-Bench-Macro (real CIFAR-10).

Both supernets are trained with the same budget of path-images (a FairNAS step trains m = 3
paths, so it gets a third of SPOS's steps), the same seed and data; each is then scored on the
same seeded sample of distinct architectures (BN-recalibrated validation accuracy) and compared
with the table's ground truth: Kendall tau with a bootstrap 95% CI, Spearman, tau inside
equal-identity groups, top-k overlap. Beside them, zero-cost references computed from the table
on the same sample: FLOPs alone, fewer identities, and two from-scratch training seeds (the
ceiling).

    python benchmarks/bench_ranking.py [--quick] [--budget-images 300000] [--num-archs 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_run, write_result  # noqa: E402

from nas_core.ground_truth import load_table  # noqa: E402
from nas_core.ranking import rank_statistics, sample_distinct  # noqa: E402
from nas_core.trainer import Trainer  # noqa: E402


def train_and_rank(name: str, sampler: str, paths_per_step: int, args, archs, truth, groups, tmp: Path) -> dict:
    steps = max(1, args.budget_images // (args.batch_size * paths_per_step))
    overrides = [
        f"space.width={args.width}", f"train.batch_size={args.batch_size}", f"train.max_steps={steps}",
        f"sampler.name={sampler}", f"data.train_subset={args.train_subset}", f"data.val_subset={args.val_subset}",
        f"evaluator.bn_recal_batches={args.bn_batches}", "evaluator.batch_size=250", f"train.optimizer.lr={args.lr}",
        f"train.scheduler.warmup_steps={min(100, steps // 10)}", f"train.log_every_steps={max(1, steps // 20)}",
    ]
    run = make_run(tmp / name, overrides)
    start = time.perf_counter()
    trainer = Trainer(run)
    trainer.fit()
    train_seconds = time.perf_counter() - start
    curve = [line for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    start = time.perf_counter()
    scores = run.evaluator.evaluate(run.supernet, archs)
    eval_seconds = time.perf_counter() - start
    report = rank_statistics(scores, truth, groups, args.bootstrap, 0, (10, 20))
    import json

    return {
        "sampler": sampler,
        "steps": steps,
        "path_images": steps * args.batch_size * paths_per_step,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "train_curve": [json.loads(c) for c in curve],
        **{k: v for k, v in report.items()},
        "scores": scores,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget-images", type=int, default=300_000, help="path-images per method")
    parser.add_argument("--num-archs", type=int, default=200)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-subset", type=int, default=45_000)
    parser.add_argument("--val-subset", type=int, default=2_000)
    parser.add_argument("--bn-batches", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args()
    if args.quick:
        args.budget_images, args.num_archs, args.train_subset, args.val_subset, args.bn_batches, args.bootstrap = 3 * 64 * 6, 12, 2000, 250, 1, 100
        args.batch_size = 64

    table = load_table()
    from nas_core.spaces.nas_bench_macro import nas_bench_macro

    space = nas_bench_macro()
    archs = sample_distinct(space, args.num_archs, seed=0)
    keys = [space.encode(a) for a in archs]
    truth = [table[k].mean_acc for k in keys]
    groups = [space.num_identities(a) for a in archs]
    references = {
        "flops": float(stats.kendalltau([table[k].flops for k in keys], truth).statistic),
        "fewer_identities": float(stats.kendalltau([-g for g in groups], truth).statistic),
        "seed0_vs_seed1": float(stats.kendalltau([table[k].test_acc[0] for k in keys], [table[k].test_acc[1] for k in keys]).statistic),
    }
    methods = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, sampler, m in (("spos", "uniform", 1), ("fairnas", "fairnas", 3)):
            methods[name] = train_and_rank(name, sampler, m, args, archs, truth, groups, Path(tmp))
    result = {"settings": vars(args), "archs": keys, "zero_cost_references_tau": references, "methods": methods}
    path = write_result("ranking", result, args.quick)
    print(f"{args.num_archs} distinct architectures, {args.budget_images} path-images per method, width {args.width}")
    for name, r in methods.items():
        lo, hi = r["kendall_tau_ci95"]
        print(f"  {name:8s} tau {r['kendall_tau']:.3f} [95% CI {lo:.3f}, {hi:.3f}]  spearman {r['spearman_rho']:.3f}  "
              f"tau in equal-identity groups {r['group_tau_weighted_mean']:.3f}  ({r['train_seconds']:.0f} s train, {r['eval_seconds']:.0f} s eval)")
    print("  references from the table: " + ", ".join(f"{k} tau {v:.3f}" for k, v in references.items()))
    ratio = methods["fairnas"]["kendall_tau"] / methods["spos"]["kendall_tau"] if methods["spos"]["kendall_tau"] else float("nan")
    print(f"  FairNAS / SPOS tau ratio {ratio:.3f} -> {path}")


if __name__ == "__main__":
    main()
