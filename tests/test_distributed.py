"""torchrun with 2 CPU processes (gloo): same weights as one process, same search, resumable."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from nas_core.spaces.nas_bench_macro import nas_bench_macro
from nas_core.trainer import Trainer
from nas_test_helpers import REPO, nas, tiny_overrides, tiny_run

QUICKSTART = str(REPO / "tests" / "base.yaml")
STEPS = ["train.batch_size=64", "sampler.name=fairnas", "train.optimizer.lr=0.01", "train.scheduler.warmup_steps=0"]
ENV = {"OMP_NUM_THREADS": "1"}


def torchrun(nproc: int, *args: str, wait: bool = True):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "nas_core.cli", *args]
    env = {**os.environ, **ENV}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def params(run_dir):
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    return {k: v for k, v in state["supernet"].items() if "running" not in k and "num_batches" not in k}, state


def distance(a: dict, b: dict) -> float:
    """Euclidean distance between two sets of weights (every parameter), in float64."""
    assert a.keys() == b.keys()
    return float(sum(((a[k].double() - b[k].double()) ** 2).sum() for k in a)) ** 0.5


def nudged_gradients_run(run_dir, *overrides: str, resume: bool = False) -> dict:
    """The single-process run again, in this process (one thread, like the CLI runs), with every
    gradient moved by one unit in its last place (up or down at random) before each optimiser
    step: one float32 rounding of the gradient sums, the kind of difference two processes make.
    How far its weights end from the unperturbed run's is how much this machine's arithmetic
    lets such roundings grow over these steps."""
    run = tiny_run(run_dir, *overrides)
    trainer = Trainer(run)
    generator = torch.Generator().manual_seed(0)

    def nudge(optimizer, args, kwargs):
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    up = torch.rand(p.grad.shape, generator=generator) < 0.5
                    p.grad.copy_(torch.nextafter(p.grad, torch.where(up, torch.inf, -torch.inf)))

    trainer.optimizer.register_step_pre_hook(nudge)
    trainer.fit(resume=resume)
    return {k: v.detach().clone() for k, v in run.supernet.state_dict().items() if "running" not in k and "num_batches" not in k}


# The two-process weights must be within TOLERANCE x the measured rounding growth of the one-process
# ones. Observed ratios (distance / growth) after two steps: 0.86 here (AVX-512), 1.6 with
# ATEN_CPU_CAPABILITY=avx2, 0.18 with =default: 20x keeps a 12x margin over the worst of them.
TOLERANCE = 20


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path, shared_data):
    """Both ranks end with identical weights (the trainer compares a hash of every parameter
    across ranks and fails otherwise) equal to one process accumulating the same two slices.

    "Equal" up to rounding: two processes all-reduce per-rank gradient sums, one process adds
    the slices' gradients one by one, so the sums round differently, and this tiny BN-heavy net
    amplifies rounding about a hundredfold per step. By how much depends on the processor: a
    fixed 1e-6 on the largest weight difference after two steps passed on the machine that set
    it and failed on another at 1.33e-6 (issue 17). So the yardstick is measured by the test, on
    the machine running it: the one-process run repeated with every gradient nudged by one ulp
    (``nudged_gradients_run``). Distances are Euclidean over all weights, which varies less
    between processors than the single largest difference. A real bug (gradients summed instead
    of averaged, a slice trained twice, another path) moves the weights by the size of an
    update: the test checks that the update is over 50x the tolerance (observed ~250x), so a bug
    cannot hide inside it."""
    steps = [*STEPS, "train.max_steps=2"]
    torchrun(2, "train", QUICKSTART, *tiny_overrides(tmp_path / "ddp", *steps))
    nas("train", QUICKSTART, *tiny_overrides(tmp_path / "single", *steps, "train.micro_batches=2"), env=ENV, check=True)
    (ddp, ddp_state), (single, single_state) = params(tmp_path / "ddp"), params(tmp_path / "single")
    assert ddp_state["step"] == single_state["step"] == 2
    assert ddp_state["components"] == single_state["components"]  # same paths were sampled
    growth = distance(nudged_gradients_run(tmp_path / "nudged", *steps, "train.micro_batches=2"), single)
    torch.manual_seed(0)  # the supernet's initial weights, as the run seeds them
    initial = nas_bench_macro(width=0.25).build_supernet().state_dict()
    update = distance(single, {k: initial[k] for k in single})
    difference = distance(ddp, single)
    print(f"[margin] two processes vs one, distance: observed {difference:.4g}, bound {TOLERANCE * growth:.4g}")
    print(f"[margin] update vs tolerance: observed {update:.4g}, bound {50 * TOLERANCE * growth:.4g}")
    assert growth > 0 and update > 50 * TOLERANCE * growth, (update, growth)
    assert difference < TOLERANCE * growth, (difference, growth)


def test_distributed_search_agrees_across_ranks_and_with_one_process(trained_tiny, tmp_path):
    for name in ("dist", "single"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "checkpoint.pt").symlink_to(trained_tiny / "checkpoint.pt")
    search = ["search.searcher.population=6", "search.searcher.generations=2"]
    torchrun(2, "search", QUICKSTART, *tiny_overrides(tmp_path / "dist", *search))
    nas("search", QUICKSTART, *tiny_overrides(tmp_path / "single", *search), env=ENV, check=True)
    dist_result = json.loads((tmp_path / "dist" / "search.json").read_text())
    single_result = json.loads((tmp_path / "single" / "search.json").read_text())
    assert dist_result["best"]["arch"] == single_result["best"]["arch"]
    assert {c["arch"]: c["score"] for c in dist_result["history"]} == pytest.approx({c["arch"]: c["score"] for c in single_result["history"]})


def kill_after_first_checkpoint(run_dir, steps):
    proc = torchrun(2, "train", QUICKSTART, *tiny_overrides(run_dir, *steps), wait=False)
    deadline = time.time() + 600
    while not (run_dir / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    step = torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < step < STOP_STEPS, "the run must be killed mid-way"


STOP_STEPS = 5


def test_kill_under_torchrun_and_resume_with_same_or_other_world_size(tmp_path, shared_data):
    """Resumed under the same world size, the weights are bit-identical to the run that was not
    stopped (the same computations in the same order). Resumed in one process, they are equal up
    to rounding, judged as in the first test against the rounding growth measured over the same
    resumed steps (observed here: distance exactly 0). 5 steps (killed at step 2 or 4), not more:
    rounding grows so fast in this net that after 6 resumed steps the tolerance was already a
    third of the resumed updates, about the size of a bug (a wrong batch, optimiser or scheduler
    state after resume moves the weights by a good part of the resumed updates). The test checks
    that the resumed updates are over 10x the tolerance."""
    steps = [*STEPS, f"train.max_steps={STOP_STEPS}", "train.checkpoint_every_steps=2"]
    torchrun(2, "train", QUICKSTART, *tiny_overrides(tmp_path / "straight", *steps))
    straight, straight_state = params(tmp_path / "straight")

    kill_after_first_checkpoint(tmp_path / "same", steps)
    torchrun(2, "train", QUICKSTART, *tiny_overrides(tmp_path / "same", *steps), "--resume")
    same, same_state = params(tmp_path / "same")
    assert same_state["step"] == STOP_STEPS and same_state["components"] == straight_state["components"]
    assert all(torch.equal(same[k], straight[k]) for k in straight)

    kill_after_first_checkpoint(tmp_path / "other", steps)
    shutil.copytree(tmp_path / "other", tmp_path / "nudged")
    at_kill, _ = params(tmp_path / "nudged")
    nas("train", QUICKSTART, *tiny_overrides(tmp_path / "other", *steps, "train.micro_batches=2"), "--resume", env=ENV, check=True)
    other, other_state = params(tmp_path / "other")
    assert other_state["step"] == STOP_STEPS and other_state["components"] == straight_state["components"]
    assert other_state["loader"] == straight_state["loader"]  # the same global batches were visited
    growth = distance(nudged_gradients_run(tmp_path / "nudged", *steps, "train.micro_batches=2", resume=True), other)
    difference, resumed_updates = distance(other, straight), distance(straight, at_kill)
    print(f"[margin] resumed in one process vs two, distance: observed {difference:.4g}, bound {TOLERANCE * growth:.4g}")
    print(f"[margin] resumed updates vs tolerance: observed {resumed_updates:.4g}, bound {10 * TOLERANCE * growth:.4g}")
    assert growth > 0 and resumed_updates > 10 * TOLERANCE * growth, (resumed_updates, growth)
    assert difference < TOLERANCE * growth, (difference, growth)
