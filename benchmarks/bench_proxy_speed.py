"""Seconds per network of the zero-cost proxies: the plugin against its original implementation.

The original (kept as the reference in plugins/nas-zero-cost/tests/test_proxies_match_reference.py)
scored a standalone copy of each path (``supernet.extract``) and built NASWOT's kernel in
float64 from all the concatenated activation codes; the plugin scores the path in place and
builds the kernel layer by layer in exact float32. Both run here on the same networks (a seeded
sample of NAS-Bench-Macro at the study's width 0.25, one seeded initialisation, one CIFAR-10
batch of 64 -- the settings of the ``ranking-loss`` prior and the main job's rank fusion), in
alternating rounds so machine noise hits both alike; per proxy the median over rounds of CPU
seconds per network (``time.process_time``: robust to a shared machine), wall seconds too, the
ratio, and the largest relative score difference (0 means bit-identical). The cost of the copy
alone (``supernet.extract``) is reported as well.

    python benchmarks/bench_proxy_speed.py [--quick] [--num-archs 24] [--rounds 3] [--note "..."]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, write_result  # noqa: E402

from nas_core.ranking import sample_distinct  # noqa: E402
from nas_core.testing import Kit  # noqa: E402

REFERENCE_FILE = REPO / "plugins" / "nas-zero-cost" / "tests" / "test_proxies_match_reference.py"


def load_reference():
    """The original implementation, from the test that pins the plugin's scores to it."""
    spec = importlib.util.spec_from_file_location("proxies_reference", REFERENCE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(fn) -> tuple[float, float, list[float]]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 networks, 1 round, batch 16 (seconds)")
    parser.add_argument("--num-archs", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--note", default="", help="what else ran on the machine (recorded in the result)")
    args = parser.parse_args()
    if args.quick:
        args.num_archs, args.rounds, args.batch_size = 3, 1, 16
    torch.set_num_threads(args.threads)
    import nas_zero_cost.plugin as zero_cost

    reference = load_reference()
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = {
            "seed": args.seed,
            "device": "cpu",
            "space": {"name": "nas-bench-macro", "width": args.width},
            "data": {"name": "cifar10", "train_subset": 1000, "val_subset": 100},
            "evaluator": {"name": "naswot"},
        }
        run, _ = Kit(tmp).open(config, plugins=[zero_cost], record=False)
        archs = sample_distinct(run.space, args.num_archs, args.seed)
        for name in ("naswot", "synflow", "zen-score"):
            options = zero_cost.OPTIONS[name](weights="init", batch_size=args.batch_size, seed=args.seed)
            evaluator = zero_cost.EVALUATORS[name](run.context, options)
            evaluator.evaluate(None, archs[:1])  # the initialisation and the batch, outside the timing
            per: dict[str, dict[str, list[float]]] = {k: {"cpu": [], "wall": []} for k in ("reference", "plugin")}
            scores: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for kind, fn in (
                    ("reference", lambda: reference.reference_evaluate(evaluator, None, archs)),
                    ("plugin", lambda: evaluator.evaluate(None, archs)),
                ):
                    cpu, wall, scores[kind] = timed(fn)
                    per[kind]["cpu"].append(cpu / len(archs))
                    per[kind]["wall"].append(wall / len(archs))
            median = {kind: {k: statistics.median(v) for k, v in d.items()} for kind, d in per.items()}
            worst = max(abs(a - b) / abs(b) for a, b in zip(scores["plugin"], scores["reference"]))
            results[name] = {
                "reference_cpu_s_per_network": median["reference"]["cpu"],
                "plugin_cpu_s_per_network": median["plugin"]["cpu"],
                "reference_wall_s_per_network": median["reference"]["wall"],
                "plugin_wall_s_per_network": median["plugin"]["wall"],
                "speedup_cpu": median["reference"]["cpu"] / median["plugin"]["cpu"],
                "max_relative_score_difference": worst,
                "rounds": per,
            }
            print(
                f"{name:10s} reference {median['reference']['cpu']:.4f} CPU-s/network  plugin {median['plugin']['cpu']:.4f}  "
                f"x{results[name]['speedup_cpu']:.1f}  (wall {median['reference']['wall']:.4f} -> {median['plugin']['wall']:.4f}; "
                f"largest relative score difference {worst:.2g})",
                flush=True,
            )
        source = zero_cost.NaswotEvaluator(run.context, zero_cost.ZeroCostOptions(seed=args.seed)).source(None)
        cpu, wall, _ = timed(lambda: [source.extract(a) for a in archs])
        results["extract_copy"] = {"cpu_s_per_network": cpu / len(archs), "wall_s_per_network": wall / len(archs)}
        print(f"the copy alone (supernet.extract): {cpu / len(archs):.4f} CPU-s/network")
    path = write_result(
        "proxy_speed",
        {
            "space": "nas-bench-macro",
            "width": args.width,
            "batch_size": args.batch_size,
            "num_archs": len(archs),
            "rounds": args.rounds,
            "seed": args.seed,
            "threads": args.threads,
            "archs": [run.space.encode(a) for a in archs],
            "results": results,
            "note": args.note,
            "load_average_before_after": [list(load_before), list(os.getloadavg())],
        },
        args.quick,
    )
    print(f"-> {path}")


if __name__ == "__main__":
    main()
