"""Training techniques of issue 12 at small scale on real CIFAR-10: what they cost, whether the
ranking loss learns.

1. COST PER STEP. Four recipes with four paths per step train side by side on the same batches
   (NAS-Bench-Macro, the study's width 0.25 and batch 128): ``uniform-4`` (four independent
   uniform paths), ``sandwich`` (largest, smallest, two random), ``rank-depth`` (sandwich +
   ranking-loss with the depth prior, weight on from the first step) and ``rank-naswot``
   (the NASWOT prior, plugin zero_cost). Blocks of steps alternate between them so machine
   noise hits all alike; the median CPU seconds per step (``time.process_time``: robust to a
   shared machine; wall times are recorded too) and the ratios to ``uniform-4`` are reported. A prior's cost falls on the first time a network is drawn, so it is reported
   apart: seconds per newly scored network, and how many distinct networks a study-length run
   (2M path-images) draws.
2. DOES IT LEARN. ``rank-depth`` trained from scratch with the hinge's weight at 0 (the
   control: same paths, same batches, nothing pushes the order), 1 and 4:
   ``ranking_loss/violated``, the fraction of prior-ordered pairs whose deeper path has the
   higher loss, over the first and the last steps.

    python benchmarks/bench_techniques.py [--quick] [--part cost,learn]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, make_run, write_result  # noqa: E402

from nas_core.trainer import Trainer  # noqa: E402

SANDWICH = ["sampler.name=sandwich", "sampler.random_paths=2"]
RANKING = "regularizers=[{{name: ranking-loss, prior: {{name: {prior}}}, weight: {weight}, warmup_fraction: {warmup}, ramp_end_fraction: {ramp}}}]"
RECIPES = {
    "uniform-4": ["sampler.name=uniform", "sampler.paths_per_step=4"],
    "sandwich": SANDWICH,
    "rank-depth": [*SANDWICH, RANKING.format(prior="depth", weight=1.0, warmup=0.0, ramp=0.0)],
    "rank-naswot": [*SANDWICH, RANKING.format(prior="naswot", weight=1.0, warmup=0.0, ramp=0.0), "plugins.enable=[zero_cost]"],
}


def common(width: float, batch: int, train_subset: int, steps: int) -> list[str]:
    return [
        f"space.width={width}", f"data.train_subset={train_subset}", "data.val_subset=200", f"train.batch_size={batch}",
        f"train.max_steps={steps}", "train.log_every_steps=1", "train.checkpoint_every_steps=0", "train.scheduler.warmup_steps=0",
    ]


def cost(args: argparse.Namespace, where: Path) -> dict:
    """Alternating blocks of steps of every recipe; median seconds per step."""
    base = common(args.width, args.batch, args.train_subset, args.blocks * args.block_steps + args.warm_steps)
    trainers = {name: Trainer(make_run(where / name, base + extra)) for name, extra in RECIPES.items()}
    for trainer in trainers.values():
        for _ in range(args.warm_steps):  # the first steps pay one-off costs (allocations, the priors' first networks)
            trainer.train_step()
    cpu: dict[str, list[float]] = {name: [] for name in trainers}
    wall: dict[str, list[float]] = {name: [] for name in trainers}
    prior_cpu = {name: 0.0 for name in trainers}
    prior_new = {name: 0 for name in trainers}
    for _ in range(args.blocks):
        for name, trainer in trainers.items():
            ranking = trainer.run.regularizers[0] if trainer.run.regularizers else None
            known = len(ranking.scores) if ranking else 0
            timed_prior = _time_prior(ranking) if ranking else None
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            for _ in range(args.block_steps):
                trainer.train_step()
            cpu[name].append((time.process_time() - started_cpu) / args.block_steps)
            wall[name].append((time.perf_counter() - started_wall) / args.block_steps)
            if ranking:
                prior_cpu[name] += timed_prior.seconds
                prior_new[name] += len(ranking.scores) - known
                timed_prior.restore()
    medians = {name: statistics.median(v) for name, v in cpu.items()}
    # the prior's own cost, taken out of the blocks' CPU time: what a step costs once its networks are scored
    without_prior = {n: statistics.median(cpu[n]) - prior_cpu[n] / (args.blocks * args.block_steps) for n in trainers}
    steps = 2_000_000 // (128 * 4)
    distinct = _distinct_networks(trainers["sandwich"], steps)
    return {
        "cpu_seconds_per_step_median": medians,
        "cpu_seconds_per_step_blocks": cpu,
        "wall_seconds_per_step_blocks": wall,
        "ratio_to_uniform_4": {name: medians[name] / medians["uniform-4"] for name in medians},
        "ratio_to_uniform_4_without_prior_scoring": {n: without_prior[n] / medians["uniform-4"] for n in trainers},
        "prior_cpu_seconds_per_new_network": {n: prior_cpu[n] / prior_new[n] for n in trainers if prior_new[n]},
        "study_run": {
            "steps": steps, "distinct_networks_drawn": distinct,
            "prior_cpu_seconds": {n: distinct * prior_cpu[n] / prior_new[n] for n in trainers if prior_new[n]},
        },
    }


class _time_prior:
    """Wraps a ranking regularizer's prior evaluation with a stopwatch."""

    def __init__(self, ranking):
        self.ranking, self.seconds = ranking, 0.0
        self.original = ranking.prior.evaluate

        def timed(supernet, archs):
            started = time.process_time()
            try:
                return self.original(supernet, archs)
            finally:
                self.seconds += time.process_time() - started

        ranking.prior.evaluate = timed

    def restore(self) -> None:
        self.ranking.prior.evaluate = self.original


def _distinct_networks(trainer: Trainer, steps: int) -> int:
    """Distinct canonical networks a fresh sandwich sampler (the run's seed) draws in ``steps`` steps."""
    from nas_core.components.samplers import SandwichOptions, SandwichSampler

    run = trainer.run
    sampler = SandwichSampler(run.context, SandwichOptions(random_paths=2))
    return len({run.space.canonical(p) for s in range(steps) for p in sampler.sample(s)})


def learn(args: argparse.Namespace, where: Path) -> dict:
    """rank-depth at several hinge weights (0 = control): violated-pair fraction, first vs last steps."""
    base = common(args.width, args.learn_batch, args.learn_subset, args.learn_steps)
    out = {}
    for weight in (float(w) for w in args.weights.split(",")):
        name = f"weight-{weight:g}"
        ranking = RANKING.format(prior="depth", weight=weight, warmup=0.0, ramp=args.ramp)
        run = make_run(where / f"learn-{name}", base + [*SANDWICH, ranking, "train.optimizer.lr=0.1"])
        started = time.process_time()
        Trainer(run).fit()
        seconds = time.process_time() - started
        records = [r for r in _read_metrics(run.run_dir) if "ranking_loss/violated" in r]
        k = args.window
        first, last = records[:k], records[-k:]

        def mean(rows, key):
            return sum(r[key] for r in rows) / len(rows)

        out[name] = {
            "weight": weight, "steps": len(records), "cpu_seconds": seconds,
            "violated_first": mean(first, "ranking_loss/violated"), "violated_last": mean(last, "ranking_loss/violated"),
            "violated_mean": mean(records, "ranking_loss/violated"),
            "hinge_first": mean(first, "ranking_loss/hinge"), "hinge_last": mean(last, "ranking_loss/hinge"),
            "loss_first": mean(first, "loss"), "loss_last": mean(last, "loss"),
            "violated_curve": [round(r["ranking_loss/violated"], 4) for r in records],
        }
    return out


def _read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--part", default="cost,learn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--train-subset", type=int, default=5000)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--block-steps", type=int, default=3)
    parser.add_argument("--warm-steps", type=int, default=2)
    parser.add_argument("--learn-steps", type=int, default=150)
    parser.add_argument("--learn-batch", type=int, default=32)
    parser.add_argument("--learn-subset", type=int, default=10000)
    parser.add_argument("--weights", default="0,1,4", help="ranking-loss weights of the learning runs (0: the control)")
    parser.add_argument("--ramp", type=float, default=0.0, help="ramp_end_fraction of the learning runs")
    parser.add_argument("--window", type=int, default=30, help="steps averaged at the start and at the end")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.train_subset, args.blocks, args.block_steps, args.warm_steps = 16, 500, 1, 1, 1
        args.learn_steps, args.learn_batch, args.learn_subset, args.window = 6, 16, 500, 2
    torch.set_num_threads(args.threads)
    result: dict = {"args": vars(args), "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.part.split(","):
            result[part] = {"cost": cost, "learn": learn}[part](args, Path(tmp))
            print(f"{part}: {result[part] if part == 'cost' else {k: {x: v[x] for x in v if x != 'violated_curve'} for k, v in result[part].items()}}")
    result["load_after"] = os.getloadavg()
    previous = RESULTS / f"techniques{'-quick' if args.quick else ''}.json"
    if previous.is_file():  # a run of one part keeps the other part's latest result
        kept = json.loads(previous.read_text())
        result.update({part: kept[part] for part in ("cost", "learn") if part in kept and part not in result})
    path = write_result("techniques", result, args.quick)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
