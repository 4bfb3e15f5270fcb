"""Zero-cost proxies (the example plugin nas-zero-cost) against NAS-Bench-Macro ground truth.

Training-free ranking: each proxy scores a seeded sample of distinct architectures of the
benchmark's own networks (NAS-Bench-Macro at width 1.0, one seeded fresh initialisation of the
whole space, one CIFAR-10 training batch), and is compared with the table's trained accuracy:
Kendall tau with a bootstrap 95% CI, Spearman, tau inside equal-identity groups (does the proxy
know more than "fewer identities is better"?), top-10 overlap, and seconds per architecture.
Side by side, on the same sample: the complexity baselines MACs and parameters, which cost
nothing and already rank this space well.

    python benchmarks/bench_zero_cost.py [--quick] [--num-archs 150] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from nas_core.ground_truth import load_table  # noqa: E402
from nas_core.ranking import rank_statistics, sample_distinct  # noqa: E402
from nas_core.testing import Kit  # noqa: E402

PROXIES = ("synflow", "grad-norm", "snip", "naswot")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="24 architectures, batch 16 (about a minute)")
    parser.add_argument("--num-archs", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample, the initialisation and the batch")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.num_archs, args.batch_size, args.bootstrap = 24, 16, 200
    torch.set_num_threads(args.threads)
    import nas_zero_cost.plugin as zero_cost

    table = load_table()
    with tempfile.TemporaryDirectory() as tmp:
        kit = Kit(tmp)
        config = {
            "seed": args.seed,
            "space": {"name": "nas-bench-macro", "width": 1.0},
            "data": {"name": "cifar10", "train_subset": 5000, "val_subset": 100},
            "evaluator": {"name": "synflow"},
        }
        run, _ = kit.open(config, plugins=[zero_cost], record=False)
        archs = sample_distinct(run.space, args.num_archs, args.seed)
        keys = [run.space.encode(a) for a in archs]
        truth = [table[k].mean_acc for k in keys]
        groups = [run.space.num_identities(a) for a in archs]
        complexity = [run.space.complexity(a) for a in archs]
        results: dict[str, dict] = {}
        baselines = {"macs": [float(m) for m, _ in complexity], "params": [float(p) for _, p in complexity]}
        for name, scores in baselines.items():
            results[name] = {**rank_statistics(scores, truth, groups, args.bootstrap, args.seed, (10,)), "seconds_per_arch": 0.0}
        for name in PROXIES:
            evaluator = zero_cost.EVALUATORS[name](run.context, zero_cost.ZeroCostOptions(weights="init", batch_size=args.batch_size, seed=args.seed))
            evaluator.evaluate(None, archs[:1])  # build the initialisation and the batch outside the timing
            start = time.perf_counter()
            scores = evaluator.evaluate(None, archs)
            seconds = (time.perf_counter() - start) / len(archs)
            results[name] = {**rank_statistics(scores, truth, groups, args.bootstrap, args.seed, (10,)), "seconds_per_arch": seconds, "scores": scores}
            print(f"{name:10s} tau {results[name]['kendall_tau']:.3f}  ({seconds * 1000:.0f} ms/arch)", flush=True)

    print(f"\nNAS-Bench-Macro, {len(archs)} distinct architectures, width 1.0, batch {args.batch_size}, seed {args.seed}")
    print(f"{'score':10s} {'Kendall tau [95% CI]':>26s} {'Spearman':>9s} {'tau in id-groups':>17s} {'top-10':>7s} {'ms/arch':>8s}")
    for name, r in results.items():
        lo, hi = r["kendall_tau_ci95"]
        print(
            f"{name:10s} {r['kendall_tau']:>8.3f} [{lo:.3f}, {hi:.3f}]   {r['spearman_rho']:>9.3f} {r['group_tau_weighted_mean']:>17.3f} "
            f"{r['top_k_overlap']['10']:>7.1f} {r['seconds_per_arch'] * 1000:>8.0f}"
        )
    best = max(PROXIES, key=lambda n: results[n]["kendall_tau"])
    ratio = results[best]["kendall_tau"] / results["macs"]["kendall_tau"]
    print(f"best proxy: {best}, tau ratio to the MACs baseline {ratio:.2f}")
    path = write_result(
        "zero_cost",
        {
            "space": "nas-bench-macro",
            "width": 1.0,
            "num_archs": len(archs),
            "batch_size": args.batch_size,
            "seed": args.seed,
            "archs": keys,
            "ground_truth": truth,
            "results": results,
            "best_proxy": best,
            "best_tau_over_macs_tau": ratio,
        },
        args.quick,
    )
    print(f"-> {path}")


if __name__ == "__main__":
    main()
