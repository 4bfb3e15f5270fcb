"""Supernet overhead: a training step on a sampled path vs the same subnet built standalone.

Both train architecture ``11111111`` of NAS-Bench-Macro on the same real CIFAR-10 batches with
the same optimiser. The supernet side is the engine's own ``Trainer.train_step`` (data
pipeline, sampler, every hook dispatch, all installed plugins loaded); the standalone side is a
plain PyTorch loop over the extracted subnet with the same data pipeline. Blocks of steps
alternate between the two so machine noise hits both alike. Prints the throughput ratio
(target >= 0.97) and the share of step time spent in pluggy hook dispatch (target < 1%).

    python benchmarks/bench_overhead.py [--quick] [--width 0.5] [--blocks 8] [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_run, write_result  # noqa: E402

from nas_core.api import Sampler  # noqa: E402
from nas_core.run import Hooks  # noqa: E402
from nas_core.trainer import Trainer, build_optimizer  # noqa: E402


class FixedPath(Sampler):
    def __init__(self, arch):
        self.arch = arch

    def sample(self, step):
        return [self.arch]


class TimedHooks:
    """Wraps the run's hook facade and accumulates the time spent inside hook dispatch."""

    def __init__(self, hooks: Hooks):
        self._hooks = hooks
        self.seconds = 0.0

    def __getattr__(self, name):
        target = getattr(self._hooks, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return target(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps, for tests")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--blocks", type=int, default=8, help="alternating blocks per side")
    parser.add_argument("--steps", type=int, default=10, help="steps per block")
    args = parser.parse_args()
    if args.quick:
        args.blocks, args.steps, args.width, args.batch_size = 2, 3, 0.25, 32

    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), [f"space.width={args.width}", f"train.batch_size={args.batch_size}", "data.train_subset=5000",
                                   "train.grad_clip=null", "train.max_steps=100000"])
        arch = run.space.decode("11111111")
        run.slot_components("sampler")[:] = [FixedPath(arch)]  # the run's sampler, replaced in place
        timed = TimedHooks(run.hooks)
        run.hooks = timed
        trainer = Trainer(run)

        subnet = run.supernet.extract(arch).to(run.device)
        standalone_opt = build_optimizer(run.config.train, [subnet])
        loader = trainer.loader

        def standalone_step():
            images, labels = loader.next_batch()
            images = trainer.normalize(images.to(run.device))
            labels = labels.to(run.device)
            subnet.train()
            standalone_opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(subnet(images), labels)
            loss.backward()
            standalone_opt.step()

        for _ in range(2):  # warm-up both sides
            trainer.train_step()
            standalone_step()
        supernet_times, standalone_times, hook_shares = [], [], []
        for _ in range(args.blocks):
            timed.seconds = 0.0
            start = time.perf_counter()
            for _ in range(args.steps):
                trainer.train_step()
            elapsed = time.perf_counter() - start
            supernet_times.append(elapsed)
            hook_shares.append(timed.seconds / elapsed)
            start = time.perf_counter()
            for _ in range(args.steps):
                standalone_step()
            standalone_times.append(time.perf_counter() - start)

    images = args.steps * args.batch_size
    supernet_ips = [images / t for t in supernet_times]
    standalone_ips = [images / t for t in standalone_times]
    ratios = [a / b for a, b in zip(supernet_ips, standalone_ips)]
    result = {
        "arch": "11111111",
        "width": args.width,
        "batch_size": args.batch_size,
        "blocks": args.blocks,
        "steps_per_block": args.steps,
        "supernet_img_per_s_median": statistics.median(supernet_ips),
        "standalone_img_per_s_median": statistics.median(standalone_ips),
        "throughput_ratio_median": statistics.median(ratios),
        "throughput_ratio_per_block": ratios,
        "hook_dispatch_share_median": statistics.median(hook_shares),
        "plugins_loaded": [p["name"] for p in run.host.metadata() if p["loaded"]],
    }
    path = write_result("overhead", result, args.quick)
    print(
        f"supernet step {result['supernet_img_per_s_median']:.0f} img/s vs standalone {result['standalone_img_per_s_median']:.0f} img/s: "
        f"ratio {result['throughput_ratio_median']:.3f} (target >= 0.97); hook dispatch {100 * result['hook_dispatch_share_median']:.3f}% of step time "
        f"(target < 1%) -> {path}"
    )


if __name__ == "__main__":
    main()
