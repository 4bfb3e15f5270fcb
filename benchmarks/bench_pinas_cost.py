"""Pi-NAS: what a whole training step costs against the sum of its parts (issue 13).

The study's Pi-NAS training (``benchmarks/study.yaml``, training ``pinas``, built by
``Study.training_config``: NAS-Bench-Macro at width 0.25, batch 128, 4 MoCo-v2 views, 2 cross
paths, EMA teacher with grouped shuffled BN, 4,096 queued keys). After warm-up, pairs alternate:

- a WHOLE step: the engine's ``Trainer.train_step``, what ``nas train`` runs per step (batch,
  views, sampler, hooks, teacher keys, 2 student paths with their losses and backward passes,
  optimiser and scheduler step, EMA update and queue, metrics). ``Trainer.fit``'s logging and
  checkpoints (every 100 and 500 steps) are not in it;
- the same step's PARTS, each timed alone, on the whole step's own two paths and the same
  tensor shapes. NECESSARY (the issue's sum): ``student`` (supernet path, neck, InfoNCE against
  the other path's key and the queue, backward; once per path), ``teacher`` (the EMA teacher's
  supernet path and neck on a key view, no gradient, train-mode BN over the whole batch; once
  per path) and ``optimiser`` (SGD step on the gradients of both paths). OTHER parts: ``data``
  (next uint8 batch + normalisation), ``views`` (the regularizer's 4 MoCo-v2 views), ``sampler``
  and ``ema_queue`` (the teacher's EMA update over both paths' modules and the enqueue).

Reported: per part the median, 10th and 90th percentile seconds per call and per step, the ratio
whole / (2 student + 2 teacher + optimiser) and whole / (sum of all measured parts), each as the
ratio of medians and as the median [p10, p90] of the per-pair ratios. DIAGNOSTICS, not summed:
``teacher_prepare`` (the teacher's own key computation for both paths: grouped shuffled BN and
the queue copy, against 2 plain ``teacher`` passes), ``classifier_logits`` (the logits the
engine computes per path, unused without labels), ``ema_collect_params`` (gathering both
paths' parameters for the EMA) and the stages of the augmentation, per view as the plugin runs
them (uint8 to float, crop+flip, colour jitter, grayscale, blur, normalisation).

Timer: ``time.perf_counter`` (wall clock). torch runs 2 intra-op threads; a thread's CPU time
would miss the second thread's work, so the machine must be quiet: run it through the queue.
Recorded with the result: the 1-minute load average while measuring, the cores this process
used, and every other process that used over 2% of a core meanwhile (SCHED_IDLE ones marked).

    python benchmarks/heavy_queue.py run -- python benchmarks/bench_pinas_cost.py   # ~2 min, 2 threads
    python benchmarks/bench_pinas_cost.py --quick [--out FILE]                      # smoke run, 1 thread

Result: ``benchmarks/results/pinas_step_cost.json`` (``pinas_step_cost-quick.json`` with --quick).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_ticks, write_result  # noqa: E402
from heavy_queue import tickets  # noqa: E402
from study import Study, deep_merge, load_monitor  # noqa: E402

from nas_core.api import Batch, StepContext  # noqa: E402
from nas_core.trainer import Trainer  # noqa: E402
import nas_pinas  # noqa: E402
from nas_pinas import augment  # noqa: E402
from nas_pinas.components import KEYS, QUEUE, path_parameters  # noqa: E402

NECESSARY = {"student": 2, "teacher": 2, "optimiser": 1}
"""The issue's sum: part -> calls per step."""
OTHER = {"data": 1, "views": 1, "sampler": 1, "ema_queue": 1}
DIAGNOSTICS = {"teacher_prepare": 1, "classifier_logits": 2, "ema_collect_params": 1,
               "view_to_float": 4, "view_crop_flip": 4, "view_color_jitter": 4, "view_grayscale": 4, "view_blur": 4, "view_normalise": 4}
"""Measured but not summed (they repeat or split parts above); calls per step."""
QUICK = {"train": {"batch_size": 32}, "teacher": {"queue_size": 256}}


class Timings:
    """Seconds per call, by part, for the current pair; ``close()`` stores the pair."""

    def __init__(self, device: torch.device):
        self.device = device
        self.pairs: list[dict[str, list[float]]] = []
        self.current: dict[str, list[float]] = {}

    def now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def time(self, part: str, fn: Callable[[], Any]) -> Any:
        start = self.now()
        out = fn()
        self.current.setdefault(part, []).append(self.now() - start)
        return out

    def close(self) -> None:
        self.pairs.append(self.current)
        self.current = {}


def parts_of_step(trainer: Trainer, paths: list, draw: Callable[[int], list], timings: Timings, generator: torch.Generator) -> None:
    """One step's work split into parts, each timed alone, on the given paths."""
    run = trainer.run
    reg, teacher, supernet = run.regularizers[0], run.teacher, trainer.supernet

    def data():
        images, _ = trainer.loader.next_batch()
        images = images.to(run.device)
        return images, trainer.normalize(images)

    raw, normed = timings.time("data", data)
    batch = timings.time("views", lambda: reg.prepare_batch(Batch(normed, None, raw=raw)))
    timings.time("sampler", lambda: draw(trainer.step))
    supernet.train()
    teacher.supernet.train()
    teacher.neck.train()

    def key(i: int, path) -> torch.Tensor:
        with torch.no_grad():
            return F.normalize(teacher.neck(teacher.supernet.forward_features(batch.teacher_input(i), path)), dim=1)

    keys = [timings.time("teacher", lambda i=i, p=p: key(i, p)) for i, p in enumerate(paths)]
    queue = teacher.queue
    target = torch.zeros(batch.size, dtype=torch.long, device=run.device)
    trainer.optimizer.zero_grad(set_to_none=True)
    features = []

    def student(i: int, path) -> None:
        feats = supernet.forward_features(batch.student_input(i), path)
        q = F.normalize(reg.neck(feats), dim=1)
        k = keys[(i + 1) % len(keys)]
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.t()], 1) / reg.temperature
        F.cross_entropy(logits, target).backward()
        features.append(feats.detach())

    for i, path in enumerate(paths):
        timings.time("student", lambda i=i, p=path: student(i, p))
    timings.time("optimiser", trainer.optimizer.step)
    ctx = StepContext(run.context, trainer.step, 0, batch, paths, supernet, extras={KEYS: keys, QUEUE: queue.clone()}, lr=0.0)
    timings.time("ema_queue", lambda: teacher.update(ctx, []))

    # diagnostics
    probe = StepContext(run.context, trainer.step, 0, batch, paths, supernet, lr=0.0)
    timings.time("teacher_prepare", lambda: teacher.prepare(probe))
    with torch.no_grad():
        for feats in features:
            timings.time("classifier_logits", lambda f=feats: supernet.classifier(f))
    timings.time("ema_collect_params", lambda: [path_parameters(s, p) for s in (supernet, teacher.supernet) for p in paths])
    mean, std = trainer.normalize.mean, trainer.normalize.std
    for _ in range(reg.views):
        x = timings.time("view_to_float", lambda: raw.float().div(255))
        x = timings.time("view_crop_flip", lambda x=x: augment.resized_crop_flip(x, generator))
        x = timings.time("view_color_jitter", lambda x=x: augment.color_jitter(x, generator))
        x = timings.time("view_grayscale", lambda x=x: augment.random_grayscale(x, generator))
        x = timings.time("view_blur", lambda x=x: augment.gaussian_blur(x, generator))
        timings.time("view_normalise", lambda x=x: (x - mean) / std)
    timings.close()


def spread(values: list[float]) -> dict[str, float]:
    return {"median": float(np.median(values)), "p10": float(np.percentile(values, 10)), "p90": float(np.percentile(values, 90)),
            "mean": float(np.mean(values))}


def summarise(whole: list[float], pairs: list[dict[str, list[float]]]) -> dict[str, Any]:
    """Per-part table, ratios of medians and per-pair ratios."""
    per_step = {part: [sum(p[part]) for p in pairs] for part in {**NECESSARY, **OTHER, **DIAGNOSTICS}}
    necessary = [sum(per_step[part][i] for part in NECESSARY) for i in range(len(pairs))]
    everything = [necessary[i] + sum(per_step[part][i] for part in OTHER) for i in range(len(pairs))]
    whole_median = float(np.median(whole))
    table = []
    for group, parts in (("necessary", NECESSARY), ("other", OTHER), ("diagnostic", DIAGNOSTICS)):
        for part, calls in parts.items():
            per_call = [t for p in pairs for t in p[part]]
            step = spread(per_step[part])
            table.append({"part": part, "group": group, "calls_per_step": calls, "seconds_per_call": spread(per_call),
                          "seconds_per_step": step, "share_of_whole": step["median"] / whole_median})
    residual = whole_median - float(np.median(everything))
    return {
        "ratio_whole_to_necessary": whole_median / float(np.median(necessary)),
        "ratio_whole_to_all_parts": whole_median / float(np.median(everything)),
        "per_pair_ratio_whole_to_necessary": spread([w / n for w, n in zip(whole, necessary)]),
        "per_pair_ratio_whole_to_all_parts": spread([w / e for w, e in zip(whole, everything)]),
        "seconds_per_step": {"whole": spread(whole), "necessary_sum": spread(necessary), "all_parts_sum": spread(everything)},
        "unaccounted_seconds_per_step": residual,
        "unaccounted_share_of_whole": residual / whole_median,
        "parts": table,
    }


def others_while(before: dict[int, tuple[int, str, int]], after: dict[int, tuple[int, str, int]], seconds: float) -> list[str]:
    """Other processes that used over 2% of a core between two snapshots, busiest first."""
    hz, mine = os.sysconf("SC_CLK_TCK"), ancestors()
    used = sorted(((after[pid][0] - before[pid][0]) / hz / seconds * 100, after[pid][1], after[pid][2])
                  for pid in after if pid in before and pid not in mine)
    return [f"{pct:.0f}% of a core{' (SCHED_IDLE)' if policy == 5 else ''}: {cmd}" for pct, cmd, policy in reversed(used) if pct > 2]


def machine_holder() -> dict[str, Any]:
    """Who holds the heavy queue (this job, when it runs through ``heavy_queue.py run``)."""
    live = tickets()
    if not live:
        return {"holder": None, "this_job": False}
    info = live[0][1]
    return {"holder": info.get("label"), "this_job": int(info.get("pid", -1)) in ancestors()}


def ancestors() -> set[int]:
    """This process and its parents (the queue's ticket names the process that waited)."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def render(summary: dict[str, Any]) -> str:
    whole = summary["seconds_per_step"]["whole"]
    lines = [f"{'part':<20} {'calls':>5} {'s/call':>8} {'s/step':>8} {'p10':>8} {'p90':>8} {'% whole':>8}"]
    for index, row in enumerate(summary["parts"]):
        if row["group"] == "diagnostic" and summary["parts"][index - 1]["group"] != "diagnostic":
            lines.append("-- diagnostics (not summed)")
        s = row["seconds_per_step"]
        lines.append(f"{row['part']:<20} {row['calls_per_step']:>5} {row['seconds_per_call']['median']:>8.4f} {s['median']:>8.4f} "
                     f"{s['p10']:>8.4f} {s['p90']:>8.4f} {100 * row['share_of_whole']:>7.1f}%")
    n, a = summary["per_pair_ratio_whole_to_necessary"], summary["per_pair_ratio_whole_to_all_parts"]
    lines += [
        f"whole step {whole['median']:.4f} s [p10 {whole['p10']:.4f}, p90 {whole['p90']:.4f}]; unaccounted "
        f"{summary['unaccounted_seconds_per_step']:.4f} s ({100 * summary['unaccounted_share_of_whole']:.1f}%)",
        f"whole / (2 student + 2 teacher + optimiser) = {summary['ratio_whole_to_necessary']:.3f} (goal <= 1.05; per pair "
        f"{n['median']:.3f} [{n['p10']:.3f}, {n['p90']:.3f}])",
        f"whole / (all measured parts) = {summary['ratio_whole_to_all_parts']:.3f} (per pair {a['median']:.3f} [{a['p10']:.3f}, {a['p90']:.3f}])",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 32, 1 warm-up and 3 measured pairs, 1 thread (for tests)")
    parser.add_argument("--steps", type=int, default=60, help="measured pairs (whole step + its parts)")
    parser.add_argument("--warmup", type=int, default=5, help="pairs run before measuring")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="result file (default: benchmarks/results/pinas_step_cost[-quick].json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.threads = 3, 1, 1
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    holder = machine_holder()
    with tempfile.TemporaryDirectory() as tmp:
        study = Study(quick=args.quick, results=Path(tmp) / "results", runs=Path(tmp) / "runs")
        config = study.training_config("pinas", seed=0)
        if args.quick:
            config = deep_merge(config, QUICK)
        run = study.run_for(config, Path(config["run_dir"]))
        trainer = Trainer(run)
        reg = run.regularizers[0]
        if not (reg.cross_path and reg.negatives):
            raise SystemExit("error: the study's pinas training must use cross-path positives and the queue (the parts assume both)")
        sampler = run.sampler
        draw, drawn = sampler.sample, []

        def recording(step: int) -> list:
            drawn.append(draw(step))
            return drawn[-1]

        sampler.sample = recording  # the whole step's paths, replayed by its parts
        timings = Timings(run.device)
        generator = torch.Generator().manual_seed(0)
        whole: list[float] = []
        setup_seconds = time.perf_counter() - started
        ticks, cpu, wall = cpu_ticks(), time.process_time(), time.perf_counter()
        with load_monitor() as load:
            for pair in range(args.warmup + args.steps):
                start = timings.now()
                trainer.train_step()
                seconds = timings.now() - start
                parts_of_step(trainer, drawn[-1], draw, timings, generator)
                if pair < args.warmup:
                    timings.pairs.pop()
                else:
                    whole.append(seconds)
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        others = others_while(ticks, cpu_ticks(), wall)
    summary = summarise(whole, timings.pairs)
    result = {
        "what": "Pi-NAS training step (engine Trainer.train_step) vs the sum of its parts timed alone on the same paths",
        "timer": "time.perf_counter (wall clock; torch intra-op threads as below, CPU)",
        "training": "study.yaml trainings.pinas (Study.training_config, seed 0)" + (" with batch 32, queue 256 (--quick)" if args.quick else ""),
        "space": config["space"], "batch_size": config["train"]["batch_size"], "teacher": config["teacher"], "regularizers": config["regularizers"],
        "nas_pinas": str(Path(nas_pinas.__file__).parent),
        "warmup_pairs": args.warmup, "measured_pairs": args.steps,
        **summary,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "heavy_queue": holder,
                    "load_1min_while_measuring": load, "this_process_cores_while_measuring": cpu / wall,
                    "other_processes_while_measuring": others},
        "setup_seconds": setup_seconds,
        "seconds": time.perf_counter() - started,
    }
    if not all(math.isfinite(result[k]) and result[k] > 0 for k in ("ratio_whole_to_necessary", "ratio_whole_to_all_parts")):
        raise SystemExit(f"error: ratios not positive and finite: {result['ratio_whole_to_necessary']}, {result['ratio_whole_to_all_parts']}")
    out = write_result("pinas_step_cost", result, args.quick, args.out)
    print(render(summary))
    print(f"this process used {cpu / wall:.2f} cores while measuring; others: {'; '.join(others) or 'none over 2%'}")
    print(f"load (1-min average while measuring): mean {load['load_mean']:.2f}, max {load['load_max']:.2f}; "
          f"{result['seconds']:.0f} s in all -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
