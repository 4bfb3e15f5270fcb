"""ScarletNAS on NAS-Bench-Macro: does the learnable equivariant stabilizer (LES) help?

Three supernets trained side by side in one run, same data, seed and budget, then ranked:

  spos          SPOS (uniform single path), plain identity skips
  spos+les      SPOS with the stabilizer (``regularizers: [{name: les}]``)
  scarlet       ScarletNAS: strict fairness (``fairnas``, m = 3 paths, one update) + LES

Budget: the same number of path forward/backward passes (= training images processed) for every
variant. FairNAS runs m = 3 paths per optimiser step, so it gets a third of SPOS's steps
(each on one batch seen by all three paths).

Measured: the supernet training accuracy curve (against path passes), and on 200 distinct
canonical architectures (the same ones for every variant) the Kendall tau / Spearman rho between
BN-recalibrated validation accuracy and NAS-Bench-Macro ground truth, with 95% bootstrap
intervals, tau inside equal-identity-count groups, and paired-bootstrap intervals of the tau
differences against plain SPOS.

    python benchmarks/bench_scarlet.py            # full: ~11 CPU minutes, width 0.25, 3 processes
    python benchmarks/bench_scarlet.py --quick    # smoke run, well under a minute

Writes ``benchmarks/results/scarlet.json`` (``scarlet-quick.json`` with --quick) and a plot of
the training curves next to it.
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

import numpy as np
import torch

from nas_core.config import RunConfig
from nas_core.ground_truth import load_table
from nas_core.ranking import paired_difference, rank_statistics, sample_distinct
from nas_core.run import Run
from nas_core.trainer import Trainer

RESULTS = Path(__file__).resolve().parent / "results"
PATHS_PER_STEP = 3  # FairNAS m on NAS-Bench-Macro (3 choices per layer)

FULL = dict(train_subset=10000, val_subset=400, batch_size=128, path_passes=240, log_every_passes=12,
            num_archs=200, bn_recal_batches=1, eval_batch=200, warmup=12, bootstrap=1000)
QUICK = dict(train_subset=1000, val_subset=100, batch_size=32, path_passes=6, log_every_passes=3,
             num_archs=12, bn_recal_batches=1, eval_batch=50, warmup=2, bootstrap=100)

VARIANTS = {
    "spos": dict(sampler={"name": "uniform"}, regularizers=[]),
    "spos+les": dict(sampler={"name": "uniform"}, regularizers=[{"name": "les"}]),
    "scarlet": dict(sampler={"name": "fairnas"}, regularizers=[{"name": "les"}]),
}


def make_config(variant: str, p: dict, run_dir: Path, seed: int) -> RunConfig:
    paths = PATHS_PER_STEP if VARIANTS[variant]["sampler"]["name"] == "fairnas" else 1
    data = {
        "seed": seed,
        "device": "cpu",
        "run_dir": str(run_dir),
        "plugins": {"enable": ["scarlet"]},
        "space": {"name": "nas-bench-macro", "width": 0.25},
        "data": {"name": "cifar10", "val_size": 5000, "train_subset": p["train_subset"], "val_subset": p["val_subset"]},
        "train": {
            "max_steps": p["path_passes"] // paths,
            "batch_size": p["batch_size"],
            "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
            "scheduler": {"name": "cosine", "warmup_steps": max(1, p["warmup"] // paths)},
            "log_every_steps": max(1, p["log_every_passes"] // paths),
            "progress": False,
            "tensorboard": False,
        },
        **VARIANTS[variant],
        "evaluator": {"name": "accuracy", "bn_recal_batches": p["bn_recal_batches"], "batch_size": p["eval_batch"]},
        "export": {"onnx": False},
    }
    return RunConfig.model_validate(data)


def train_and_rank(variant: str, p: dict, workdir: Path, seed: int, threads: int = 1) -> dict:
    """One variant end to end (runs in its own process when --jobs > 1)."""
    torch.set_num_threads(threads)
    table = load_table(None)
    run = Run.create(make_config(variant, p, workdir / variant, seed))
    paths = PATHS_PER_STEP if run.config.sampler.name == "fairnas" else 1
    start = time.time()
    Trainer(run).fit()
    train_seconds = time.time() - start
    curve = []
    for line in (run.run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "train_acc" in record:
            curve.append({"path_passes": record["step"] * paths, "train_acc": record["train_acc"], "loss": record["loss"]})
    archs = sample_distinct(run.space, p["num_archs"], seed)
    start = time.time()
    scores = run.evaluator.evaluate(run.supernet, archs)
    eval_seconds = time.time() - start
    keys = [run.space.encode(a) for a in archs]
    truth = [table[k].mean_acc for k in keys]
    groups = [run.space.num_identities(a) for a in archs]
    report = rank_statistics(scores, truth, groups, p["bootstrap"], seed, (10, 20))
    tail = curve[-max(1, len(curve) // 5):]
    return {
        "steps": run.config.train.max_steps,
        "paths_per_step": paths,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "curve": curve,
        "final_train_acc": float(np.mean([c["train_acc"] for c in tail])),
        "ranking": {k: v for k, v in report.items()},
        "scores": scores,
        "archs": keys,
        "truth": truth,
        "groups": groups,
    }


def paired_tau_difference(a: list[float], b: list[float], truth: list[float], resamples: int, seed: int) -> dict:
    """tau(a) - tau(b) on the same architectures, with a paired bootstrap 95% interval."""
    paired = paired_difference(a, b, truth, resamples=resamples, seed=seed)
    return {"delta_tau": paired["difference"], "ci95": list(paired["ci95"])}


def acc_at(curve: list[dict], fraction: float) -> float:
    target = fraction * curve[-1]["path_passes"]
    return min(curve, key=lambda c: abs(c["path_passes"] - target))["train_acc"]


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    for name, r in results.items():
        ax.plot([c["path_passes"] for c in r["curve"]], [c["train_acc"] for c in r["curve"]], label=f"{name} (tau {r['ranking']['kendall_tau']:.3f})")
    ax.set_xlabel("path forward/backward passes (batches)")
    ax.set_ylabel("supernet training accuracy (%)")
    ax.set_title("NAS-Bench-Macro, width 0.25", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per variant")
    parser.add_argument("--jobs", type=int, default=None, help="variants trained in parallel processes (default: 3, 1 with --quick)")
    parser.add_argument("--out", help="result JSON (default benchmarks/results/scarlet[-quick].json)")
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (1 if args.quick else len(VARIANTS))
    torch.set_num_threads(args.threads)
    p = QUICK if args.quick else FULL
    out = Path(args.out) if args.out else RESULTS / ("scarlet-quick.json" if args.quick else "scarlet.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {}
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-scarlet-") as tmp:
        if args.jobs > 1:  # variants in parallel processes: same work, shorter wall time on a shared machine
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
                futures = {v: pool.submit(train_and_rank, v, p, Path(tmp), args.seed, args.threads) for v in VARIANTS}
                results = {v: f.result() for v, f in futures.items()}
        else:
            results = {v: train_and_rank(v, p, Path(tmp), args.seed, args.threads) for v in VARIANTS}
    for variant, r in results.items():
        print(f"[{variant}] trained {r['steps']} steps x {r['paths_per_step']} paths in {r['train_seconds']:.0f}s, "
              f"ranked {len(r['archs'])} archs in {r['eval_seconds']:.0f}s: tau {r['ranking']['kendall_tau']:.3f}", flush=True)
    wall = time.time() - start
    assert all(r["archs"] == results["spos"]["archs"] for r in results.values()), "variants ranked different architectures"
    truth = results["spos"]["truth"]
    comparisons = {
        f"{name} - spos": paired_tau_difference(results[name]["scores"], results["spos"]["scores"], truth, p["bootstrap"], args.seed)
        for name in ("spos+les", "scarlet")
    }
    comparisons["scarlet - spos+les"] = paired_tau_difference(results["scarlet"]["scores"], results["spos+les"]["scores"], truth, p["bootstrap"], args.seed)

    print(f"\n{'variant':10s} {'acc@25%':>8s} {'acc@50%':>8s} {'acc@100%':>9s} {'final':>7s} {'tau':>6s} {'tau 95% CI':>16s} {'rho':>6s} {'group tau':>9s} {'top10':>6s}")
    for name, r in results.items():
        k = r["ranking"]
        lo, hi = k["kendall_tau_ci95"]
        print(f"{name:10s} {acc_at(r['curve'], .25):8.2f} {acc_at(r['curve'], .5):8.2f} {acc_at(r['curve'], 1.0):9.2f} {r['final_train_acc']:7.2f} "
              f"{k['kendall_tau']:6.3f} [{lo:6.3f}, {hi:6.3f}] {k['spearman_rho']:6.3f} {k['group_tau_weighted_mean']:9.3f} {k['top_k_overlap']['10']:6.2f}")
    for name, c in comparisons.items():
        print(f"delta tau {name}: {c['delta_tau']:+.3f} [95% CI {c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]")
    ratio = results["scarlet"]["ranking"]["kendall_tau"] / results["spos"]["ranking"]["kendall_tau"]
    print(f"tau ratio scarlet / spos: {ratio:.3f}")

    summary = {
        "benchmark": "scarlet",
        "mode": "quick" if args.quick else "full",
        "seed": args.seed,
        "threads": args.threads,
        "jobs": args.jobs,
        "wall_seconds": wall,
        "settings": {**p, "space": "nas-bench-macro", "width": 0.25, "paths_per_step_fairnas": PATHS_PER_STEP,
                     "budget": "equal path forward/backward passes per variant"},
        "variants": {name: {k: v for k, v in r.items() if k not in ("scores", "archs", "truth", "groups")} for name, r in results.items()},
        "comparisons": comparisons,
        "tau_ratio_scarlet_over_spos": ratio,
        "per_arch": {"archs": results["spos"]["archs"], "ground_truth": truth, "identities": results["spos"]["groups"],
                     **{f"score_{name}": r["scores"] for name, r in results.items()}},
    }
    out.write_text(json.dumps(summary, indent=1))
    plot(results, out.with_suffix(".png"))
    print(f"-> {out}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
