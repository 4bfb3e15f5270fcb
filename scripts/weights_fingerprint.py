"""Fingerprint short seeded training runs: a SHA-256 of every tensor a run ends with.

Used to show that a refactoring changed no behaviour: run it on the old and the new code and
compare the two JSON files (``--compare OLD NEW``). Each case trains a tiny real-data supernet
for a few steps in one thread and records the hash of every supernet weight, every
component's state tensor, the optimiser state and, after training, the evaluator's scores of
three fixed architectures (so BN recalibration and evaluation are covered too); the scheduler,
data position and random state of the checkpoint are compared as well.

    python scripts/weights_fingerprint.py --out /tmp/before.json
    python scripts/weights_fingerprint.py --out /tmp/after.json
    python scripts/weights_fingerprint.py --compare /tmp/before.json /tmp/after.json

It drives the engine the way ``nas train`` does (load a config, open a run, train), through
whichever entry points the checked-out code has.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMON = [
    "device=cpu", "space.width=0.25", "data.train_subset=2000", "data.val_subset=200", "train.batch_size=32",
    "train.progress=false", "train.tensorboard=false", "train.log_every_steps=2", "export.onnx=false",
]
CASES = {
    "spos": (REPO / "tests" / "base.yaml", ["train.max_steps=12", "evaluator.bn_recal_batches=2", "evaluator.batch_size=100"]),
    "spos-micro2": (REPO / "tests" / "base.yaml", ["train.max_steps=6", "train.micro_batches=2", "evaluator.bn_recal_batches=2", "evaluator.batch_size=100"]),
    "fairnas-les": (REPO / "plugins" / "nas-scarlet" / "configs" / "scarlet-macro.yaml", ["train.max_steps=6", "evaluator.bn_recal_batches=2", "evaluator.batch_size=100"]),
    "cream": (REPO / "plugins" / "nas-cream" / "configs" / "cream-macro.yaml",
              ["train.max_steps=12", "cream.warmup_steps=3", "teacher.meta_update_every=3", "teacher.meta_slice=8", "evaluator.bn_recal_batches=2", "evaluator.batch_size=100"]),
    "pinas": (REPO / "plugins" / "nas-pinas" / "configs" / "pinas-macro.yaml",
              ["train.max_steps=4", "teacher.queue_size=256", "evaluator.bank_images=200", "evaluator.bn_recal_batches=2", "evaluator.batch_size=100"]),
}
ARCHS = ["00000000", "12021201", "22112200"]


def _digest(value) -> object:
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        return hashlib.sha256(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes()).hexdigest()[:16]
    if isinstance(value, dict):
        return {str(k): _digest(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_digest(v) for v in value]
    return value


def fingerprint(name: str, config_path: Path, overrides: list[str], run_dir: Path) -> dict:
    import torch

    from nas_core.config import load_config
    from nas_core.run import Run
    from nas_core.trainer import Trainer

    torch.set_num_threads(1)
    run = Run.create(load_config(config_path, [f"run_dir={run_dir}", *COMMON, *overrides]))
    trainer = Trainer(run)
    trainer.fit()
    state = trainer.state_dict()
    archs = [run.space.decode(a) for a in ARCHS]
    scores = run.evaluator.evaluate(run.supernet, archs)
    return {
        "step": int(state["step"]),
        "supernet": _digest(state["supernet"]),
        "optimizer": _digest(state["optimizer"]["state"]),
        "components": _digest(state["components"]),
        "component_modules": _digest(state["component_modules"]),
        "scheduler": _digest(state["scheduler"]),
        "loader": _digest(state["loader"]),
        # torch's global generator only: Python's and NumPy's global generators are seeded from the
        # OS when a process starts (the engine draws from neither), so they differ between any two runs
        "rng": _digest(state["rng"]["torch"]),
        "scores": [float(s) for s in scores],
    }


def compare(old_path: Path, new_path: Path) -> int:
    old, new = json.loads(old_path.read_text()), json.loads(new_path.read_text())
    status = 0
    for case in sorted(set(old["cases"]) | set(new["cases"])):
        a, b = old["cases"].get(case), new["cases"].get(case)
        if a is None or b is None:
            print(f"{case}: only in {'new' if a is None else 'old'}")
            status = 1
            continue
        differing = [k for k in a if a[k] != b.get(k)]
        tensors = len(a["supernet"])
        if differing:
            status = 1
            print(f"{case}: DIFFERENT in {', '.join(differing)}")
        else:
            print(f"{case}: identical ({tensors} supernet tensors, step {a['step']}, scores {a['scores']})")
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"))
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = {"load_before": os.getloadavg(), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            config_path, overrides = CASES[name]
            results["cases"][name] = fingerprint(name, config_path, overrides, Path(tmp) / name)
            print(f"{name}: done", file=sys.stderr)
    results["load_after"] = os.getloadavg()
    text = json.dumps(results, indent=1)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
