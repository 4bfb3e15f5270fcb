"""Pi-NAS vs SPOS on NAS-Bench-Macro: how well does an UNSUPERVISED supernet rank architectures?

One run, same data, seed, batch size and number of optimiser steps for every variant:

- ``spos``: supervised single-path supernet (uniform sampler, cross-entropy), scored by
  validation accuracy after BN recalibration (the engine's baseline);
- ``pinas``: Pi-NAS (no labels: cross-path sampler, 4 MoCo-v2 views, EMA mean teacher with a
  negative queue, cross-path InfoNCE), scored by kNN accuracy and by a linear probe;
- ``pinas-no-crosspath``: ablation, the positive key comes from the SAME path;
- ``pinas-no-negatives``: ablation, no queue (trivial mean teacher) -- expected to collapse.

Each supernet scores the same seeded sample of distinct architectures; Kendall tau (with a 95%
paired-bootstrap CI), Spearman rho, tau inside equal-identity groups and top-10 overlap against
the NAS-Bench-Macro ground truth are written to ``benchmarks/results/pinas.json``. The variants
train in parallel worker processes (one thread each). Budget note: a Pi-NAS step runs 2 student
paths (forward + backward) and 2 teacher forwards on 4 views, an SPOS step 1 path: per step
Pi-NAS costs ~3x more compute; wall times are reported.

    nice -n 1 .venv/bin/python benchmarks/bench_pinas.py       # full: ~10 CPU-minutes (4 processes)
    .venv/bin/python benchmarks/bench_pinas.py --quick         # smoke test, ~1 min
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

VARIANTS = ("spos", "pinas", "pinas-no-crosspath", "pinas-no-negatives")


def settings(quick: bool) -> dict:
    if quick:
        return dict(width=0.125, steps=8, batch=32, train_subset=600, val_subset=200, archs=12, bank=200, recal=1,
                    probe_steps=10, probe_images=300, eval_images=100, bootstrap=200, ablation_probe=True, eval_batch=64)
    return dict(width=0.125, steps=80, batch=64, train_subset=5000, val_subset=500, archs=200, bank=200, recal=1,
                probe_steps=40, probe_images=2000, eval_images=200, bootstrap=1000, ablation_probe=False, eval_batch=64)


def overrides(variant: str, s: dict, run_dir: str, seed: int) -> list[str]:
    common = [
        f"seed={seed}", f"run_dir={run_dir}", "device=cpu", "space.name=nas-bench-macro", f"space.width={s['width']}",
        "data.name=cifar10", "data.val_size=5000", f"data.train_subset={s['train_subset']}", f"data.val_subset={s['val_subset']}",
        f"train.max_steps={s['steps']}", f"train.batch_size={s['batch']}", "train.progress=false", "train.tensorboard=false",
        f"train.log_every_steps={max(1, s['steps'] // 10)}", "train.scheduler.warmup_steps=5",
    ]
    if variant == "spos":
        return common + [
            "train.label_loss=ce", "train.optimizer={name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.0005}", "sampler.name=uniform",
            f"evaluator={{name: accuracy, bn_recal_batches: {s['recal']}, batch_size: {s['eval_batch']}, max_images: {s['eval_images']}}}",
        ]
    reg = {"pinas": "{}", "pinas-no-crosspath": "{cross_path: false}", "pinas-no-negatives": "{negatives: false}"}[variant]
    reg = reg.strip("{}")
    return common + [
        "plugins.enable=[pinas]", "train.label_loss=none", "data.augment=false",
        "train.optimizer={name: sgd, lr: 0.06, momentum: 0.9, weight_decay: 0.0001}", "sampler.name=cross-path",
        f"regularizers=[{{name: cross-path-infonce{', ' + reg if reg else ''}}}]",
        "teacher={name: mean-teacher, momentum: 0.99, queue_size: 1024, bn_groups: 2}",
        f"evaluator={{name: knn, k: 20, bank_images: {s['bank']}, bn_recal_batches: {s['recal']}, batch_size: {s['eval_batch']}, max_images: {s['eval_images']}}}",
        "pinas={collapse_threshold: 0.15, collapse_warmup: 20}",
    ]


def run_variant(args: tuple) -> dict:
    variant, s, seed, archs = args
    import torch

    torch.set_num_threads(1)
    from nas_core.config import load_config
    from nas_core.run import Run
    from nas_core.trainer import Trainer
    from nas_pinas.evaluators import LinearProbeEvaluator, LinearProbeOptions

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = Run.create(load_config(None, overrides(variant, s, tmp, seed)))
        start = time.time()
        final = Trainer(run).fit()
        train_s = time.time() - start
        log = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
        arch_tuples = [tuple(a) for a in archs]
        out = {"variant": variant, "train_seconds": train_s, "final_metrics": final, "log": log, "scores": {}, "eval_seconds": {}}
        start = time.time()
        name = "accuracy" if variant == "spos" else "knn"
        out["scores"][name] = run.evaluator.evaluate(run.supernet, arch_tuples)
        out["eval_seconds"][name] = time.time() - start
        if variant == "pinas" or (variant.startswith("pinas") and s["ablation_probe"]):
            probe = LinearProbeEvaluator(run.context, LinearProbeOptions(steps=s["probe_steps"], train_images=s["probe_images"], bn_recal_batches=s["recal"],
                                                                            batch_size=s["eval_batch"], max_images=s["eval_images"]))
            start = time.time()
            out["scores"]["linear-probe"] = probe.evaluate(run.supernet, arch_tuples)
            out["eval_seconds"]["linear-probe"] = time.time() - start
        out["collapse_warnings"] = [str(w.message) for w in caught if "collapse" in str(w.message)]
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (used by the test suite)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="parallel variant processes (default: 4 full, 1 quick)")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps of every variant (default: 80 full, 8 quick)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    s = settings(args.quick)
    if args.steps:
        s["steps"] = args.steps

    from nas_core.ground_truth import load_table
    from nas_core.ranking import rank_statistics, sample_distinct
    from nas_core.spaces.nas_bench_macro import nas_bench_macro

    space = nas_bench_macro(width=s["width"])
    archs = sample_distinct(space, s["archs"], args.seed)
    table = load_table()
    keys = [space.encode(a) for a in archs]
    truth = [table[k].mean_acc for k in keys]
    groups = [space.num_identities(a) for a in archs]
    jobs = [(v, s, args.seed, [list(a) for a in archs]) for v in VARIANTS]
    workers = args.workers or (1 if args.quick else len(VARIANTS))
    start = time.time()
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            outs = pool.map(run_variant, jobs)
    else:
        outs = [run_variant(job) for job in jobs]
    wall = time.time() - start

    def stats(scores):
        r = rank_statistics(scores, truth, groups, resamples=s["bootstrap"], seed=args.seed, top_k=(10,))
        return {k: r[k] for k in ("kendall_tau", "kendall_tau_ci95", "spearman_rho", "group_tau_weighted_mean", "top_k_overlap")}

    macs = [float(space.complexity(a)[0]) for a in archs]  # reference predictor: more MACs ranked higher
    result = {
        "benchmark": "pinas", "settings": s, "seed": args.seed, "n_archs": len(archs), "wall_seconds": wall,
        "reference_macs": stats(macs),
        "variants": {},
    }
    rows = []
    for out in outs:
        entry = {
            "train_seconds": out["train_seconds"], "eval_seconds": out["eval_seconds"],
            "final_feat_std": out["final_metrics"].get("pinas/feat_std"), "collapse_flag": out["final_metrics"].get("pinas/collapse"),
            "collapse_warnings": out["collapse_warnings"], "final_loss": out["final_metrics"].get("loss"),
            "feat_std_curve": [[r["step"], r.get("pinas/feat_std")] for r in out["log"] if "pinas/feat_std" in r],
            "ranking": {}, "scores": out["scores"],
        }
        for evaluator, scores in out["scores"].items():
            entry["ranking"][evaluator] = stats(scores)
            st = entry["ranking"][evaluator]
            rows.append((out["variant"], evaluator, st["kendall_tau"], st["kendall_tau_ci95"], st["spearman_rho"],
                         st["group_tau_weighted_mean"], st["top_k_overlap"]["10"], entry["final_feat_std"], out["train_seconds"]))
        result["variants"][out["variant"]] = entry
    result["keys"] = keys
    result["ground_truth"] = truth

    ref = result["reference_macs"]
    print(f"Pi-NAS vs SPOS on NAS-Bench-Macro ({len(archs)} distinct archs, width {s['width']}, {s['steps']} steps x batch {s['batch']}, "
          f"{s['train_subset']} CIFAR-10 train images, seed {args.seed}; wall {wall:.0f} s)")
    print(f"{'variant':<20}{'scorer':<14}{'tau':>7}  {'95% CI':<17}{'rho':>7}{'grp tau':>9}{'top10':>7}{'feat std':>10}{'train s':>9}")
    for v, e, tau, ci, rho, gt, top, fs, ts in rows:
        fs_text = "-" if fs is None else f"{fs:.3f}"
        print(f"{v:<20}{e:<14}{tau:7.3f}  [{ci[0]:6.3f},{ci[1]:6.3f}] {rho:7.3f}{gt:9.3f}{top:7.2f}{fs_text:>10}{ts:9.0f}")
    print(f"{'(MACs alone)':<20}{'MACs':<14}{ref['kendall_tau']:7.3f}  [{ref['kendall_tau_ci95'][0]:6.3f},{ref['kendall_tau_ci95'][1]:6.3f}] "
          f"{ref['spearman_rho']:7.3f}{ref['group_tau_weighted_mean']:9.3f}{ref['top_k_overlap']['10']:7.2f}")
    sp, pk = result["variants"]["spos"]["ranking"]["accuracy"], result["variants"]["pinas"]["ranking"]["knn"]
    print(f"difference tau(Pi-NAS kNN) - tau(SPOS accuracy) = {pk['kendall_tau'] - sp['kendall_tau']:+.3f} "
          f"(Pi-NAS linear probe - SPOS: {result['variants']['pinas']['ranking']['linear-probe']['kendall_tau'] - sp['kendall_tau']:+.3f})")
    out_path = args.out or RESULTS / ("pinas-quick.json" if args.quick else "pinas.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1))
    print(f"-> {out_path}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
