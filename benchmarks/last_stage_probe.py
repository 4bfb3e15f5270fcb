"""Why do the trained supernets overrate L6? Measurements, not a fix.

In canonical form (free identities last in a stage) an identity at L6 means L7 is one too: the
network's last stage is its stride-2 layer L5 alone. Networks trained alone for 50 epochs lose
little for that (ground-truth L6 effect +0.1 sd); every 2M-path-image supernet rates them far lower
(+0.6 to +1.0 sd, `layer_effects.py`). Two questions, each on a trained study supernet:

- ``split``: is it weight sharing between the two groups? Give each L6 group (identity / an op)
  its own copy of the weights after L6 (``--part tail``: L7, head, classifier) or of all weights
  (``--part all``: the layers before L6 can specialise too -- a few-shot split at L6, started
  from the trained supernet), fine-tuned for ``--steps`` steps on its own group's paths (one
  uniform path per step, SGD ``--lr`` cosine to 0). Control: one shared copy fine-tuned for twice
  the steps on all paths (the same extra training, no split). The first ``--networks`` TUNING
  networks are scored by the study's evaluator under each; per variant: tau with the ground truth
  and the L6 effect.
- ``standalone``: is it short training? ``--pairs`` random networks with L7 = identity, each
  trained ALONE twice (identity / MB6_K5 at L6, all else equal, one shared initialisation and data
  order, the study's optimiser with a 5% warm-up, ``--epochs`` epochs), scored like the study;
  beside each pair the ground-truth and the trained supernet's difference of the same two
  networks.

    python benchmarks/last_stage_probe.py split --part tail --steps 300 --lr 0.01
    python benchmarks/last_stage_probe.py split --part all --steps 600 --lr 0.05
    python benchmarks/last_stage_probe.py standalone --pairs 6 --epochs 3
    python benchmarks/last_stage_probe.py split --quick        # smoke run (tests/test_last_stage_probe.py)

Results: ``benchmarks/results/study/last-stage-<command>-<label>.json``, written after every
variant / pair; ``standalone`` resumes from its file. Heavy: it takes the machine
(``heavy_queue.py``); the supernet is the study's seed-3 ``sandwich`` run unless ``--run`` says.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heavy_queue import machine  # noqa: E402
from layer_effects import design, fit, tau  # noqa: E402
from study import Study, load_monitor  # noqa: E402

from nas_core.checkpoint import CHECKPOINT_NAME  # noqa: E402
from nas_core.data.arrays import BatchIterator, Normalizer  # noqa: E402
from nas_core.errors import NasError  # noqa: E402
from nas_core.restore import load_trained_supernet  # noqa: E402
from nas_core.run import Run  # noqa: E402

L6, MB6 = 6, 2
RESULTS = Path(__file__).resolve().parent / "results" / "study"
TRAINING = "sandwich"


def l6_effect(keys: list[str], scores: Sequence[float]) -> list[float]:
    """Additive effect of MB3_K3 / MB6_K5 against identity at L6, in SDs of the score."""
    return [round(v, 2) for v in fit(design(keys), list(scores))["effects"][L6]]


def training_batches(run: Run) -> BatchIterator:
    """The probe's training batches: 128 images, data order seed 1, for every network alike."""
    return BatchIterator(run.data.train, 128, seed=1)


def sgd_steps(net: torch.nn.Module, run: Run, data: BatchIterator, opt: torch.optim.Optimizer, sched, steps: int,
              next_arch: Callable[[], tuple[int, ...]]) -> float:
    """``steps`` SGD steps of ``net`` on ``data``, each on the path ``next_arch()`` gives; returns
    the last step's loss."""
    norm = Normalizer(run.data.mean, run.data.std, torch.device("cpu"))
    net.train()
    for _ in range(steps):
        arch = next_arch()
        images, labels = data.next_batch()
        loss = F.cross_entropy(net(norm(images), arch), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return loss.item()


def fine_tune(net: torch.nn.Module, run: Run, part: str, l6_choices: Sequence[int], steps: int, lr: float) -> torch.nn.Module:
    """SGD on ``part`` of ``net`` ("tail": everything after L6; "all"), one path per step drawn
    uniformly except L6, drawn from ``l6_choices``; cosine from ``lr`` to 0."""
    tail = [*net.layers[L6 + 1 :].parameters(), *net.head_features.parameters(), *net.classifier.parameters()]
    params = tail if part == "tail" else list(net.parameters())
    for p in net.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(1)

    def next_arch() -> tuple[int, ...]:
        arch = [int(rng.integers(len(layer.choices))) for layer in run.space.layers]
        arch[L6] = int(rng.choice(l6_choices))
        return tuple(arch)

    sgd_steps(net, run, training_batches(run), opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps), steps, next_arch)
    for p in net.parameters():
        p.requires_grad_(True)
    return net


def score_routed(run: Run, archs: list[tuple[int, ...]], route: Callable[[tuple[int, ...]], torch.nn.Module]) -> list[float]:
    """Each network's score under the supernet ``route`` gives it (the study's evaluator)."""
    scores = [0.0] * len(archs)
    for net in {id(route(a)): route(a) for a in archs}.values():
        idx = [i for i, a in enumerate(archs) if route(a) is net]
        for i, value in zip(idx, run.evaluator.evaluate(net, [archs[i] for i in idx])):
            scores[i] = float(value)
    return scores


def split(run: Run, study: Study, args: argparse.Namespace, out: dict, save: Callable[[], None]) -> None:
    keys = study.samples()["tuning"][: args.networks]
    archs = [study.space.decode(k) for k in keys]
    truth = study.truth(keys)
    trained = run.supernet
    out.update(networks=len(keys), sample="tuning (first networks)", part=args.part, steps=args.steps, lr=args.lr,
               ground_truth_l6_effect=l6_effect(keys, truth), variants={})
    ops = [c for c in range(len(run.space.layers[L6].choices)) if c]

    def as_trained():
        return lambda arch: trained

    def shared():
        net = fine_tune(copy.deepcopy(trained), run, args.part, [0, *ops], 2 * args.steps, args.lr)
        return lambda arch: net

    def split_at_l6():
        identity_group = fine_tune(copy.deepcopy(trained), run, args.part, [0], args.steps, args.lr)
        op_group = fine_tune(copy.deepcopy(trained), run, args.part, ops, args.steps, args.lr)
        return lambda arch: op_group if arch[L6] else identity_group

    variants = {"as trained": as_trained, "shared, fine-tuned": shared, "split at L6, fine-tuned": split_at_l6}
    for name, make in variants.items():
        started = time.perf_counter()
        scores = score_routed(run, archs, make())
        out["variants"][name] = {"tau": round(tau(scores, truth), 3), "l6_effect": l6_effect(keys, scores),
                                 "seconds": round(time.perf_counter() - started), "scores": scores}
        print(name, {k: v for k, v in out["variants"][name].items() if k != "scores"}, flush=True)
        save()


def train_alone(net: torch.nn.Module, run: Run, arch: tuple[int, ...], epochs: float) -> tuple[float, float]:
    """Train one path of a fresh supernet copy (a network alone), then score it like the study;
    returns the score and the last step's loss."""
    data = training_batches(run)
    steps = max(1, int(epochs * len(data)))
    warm = max(1, steps // 20)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    loss = sgd_steps(net, run, data, opt, sched, steps, lambda: arch)
    return float(run.evaluator.evaluate(net, [arch])[0]), loss


def standalone(run: Run, fresh: torch.nn.Module, study: Study, args: argparse.Namespace, out: dict, save: Callable[[], None]) -> None:
    rng = np.random.default_rng(2026)
    bases = [[int(rng.integers(len(layer.choices))) for layer in run.space.layers[:L6]] + [0, 0] for _ in range(args.pairs)]
    out.setdefault("pairs", [])
    out.update(epochs=args.epochs)
    for i, base in enumerate(bases):
        if i < len(out["pairs"]):
            continue
        archs = [study.space.canonical(tuple(base[:L6] + [c] + base[L6 + 1 :])) for c in (0, MB6)]
        assert [a[L6] for a in archs] == [0, MB6] and archs[0][:L6] == archs[1][:L6], archs
        keys = [study.space.encode(a) for a in archs]
        started = time.perf_counter()
        alone = [train_alone(copy.deepcopy(fresh), run, a, args.epochs) for a in archs]
        out["pairs"].append({"networks": keys, "ground_truth": study.truth(keys),
                             "supernet": [float(v) for v in run.evaluator.evaluate(run.supernet, archs)],
                             "alone": [a[0] for a in alone], "alone_final_loss": [a[1] for a in alone],
                             "seconds": round(time.perf_counter() - started)})
        diffs = {k: [p[k][1] - p[k][0] for p in out["pairs"]] for k in ("ground_truth", "supernet", "alone")}
        out["mean_difference_mb6_minus_identity"] = {k: float(np.mean(v)) for k, v in diffs.items()}
        print(i, {k: round(v[-1], 2) for k, v in diffs.items()}, out["pairs"][-1]["seconds"], "s", flush=True)
        save()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["split", "standalone"])
    parser.add_argument("--run", type=Path, help=f"a trained study run folder (default runs/study/{TRAINING}-s3)")
    parser.add_argument("--networks", type=int, default=100, help="split: first TUNING networks scored")
    parser.add_argument("--part", choices=["tail", "all"], default="all", help="split: which weights each L6 group gets its own copy of")
    parser.add_argument("--steps", type=int, default=600, help="split: fine-tuning steps per group (the control gets twice)")
    parser.add_argument("--lr", type=float, default=0.05, help="split: fine-tuning learning rate")
    parser.add_argument("--pairs", type=int, default=6, help="standalone: network pairs")
    parser.add_argument("--epochs", type=float, default=3, help="standalone: epochs per network")
    parser.add_argument("--label", help="results file suffix (default: from the settings)")
    parser.add_argument("--quick", action="store_true", help="tiny settings on an untrained supernet, results under /tmp")
    args = parser.parse_args(argv)
    if args.quick:
        args.networks, args.steps, args.pairs, args.epochs = 6, 3, 1, 0.05
    scratch = Path("/tmp/last-stage-probe")
    study = Study(quick=args.quick, results=scratch / "study" if args.quick else None, runs=scratch / "runs" if args.quick else None)
    run_dir = args.run or study.runs / f"{TRAINING}-s3"
    if not args.quick and not (run_dir / CHECKPOINT_NAME).is_file():
        raise SystemExit(f"error: {run_dir / CHECKPOINT_NAME}: no checkpoint (train the study's {TRAINING} seed 3 there, or name a trained run folder with --run)")
    label = "quick" if args.quick else args.label or (f"{args.part}-{args.steps}-lr{args.lr:g}" if args.command == "split" else f"{args.pairs}x{args.epochs:g}ep")
    out_path = (scratch if args.quick else RESULTS) / f"last-stage-{args.command}-{label}.json"
    out = json.loads(out_path.read_text()) if args.command == "standalone" and out_path.exists() and not args.quick else {}
    out.update(what=__doc__.split("\n")[0], command=args.command, supernet="untrained (--quick)" if args.quick else str(run_dir),
               machine="through heavy_queue (no other heavy job)")
    out_path.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        out_path.write_text(json.dumps(out, indent=1))

    with (nullcontext() if args.quick else machine(f"last-stage probe ({args.command} {label})")), load_monitor() as load:
        if not args.quick:
            torch.set_num_threads(2)
        run = study.run_for(study.training_config(TRAINING, 3), scratch / "runs" / f"probe-{label}")
        torch.manual_seed(0)
        fresh = copy.deepcopy(run.supernet)  # before any checkpoint is read: the initialisation
        if not args.quick:
            try:
                load_trained_supernet(run, run_dir / CHECKPOINT_NAME)
            except NasError as exc:
                raise SystemExit(f"error: {exc}") from None
        if args.command == "split":
            split(run, study, args, out, save)
        else:
            standalone(run, fresh, study, args, out, save)
    out["load"] = load
    save()
    print(f"-> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
