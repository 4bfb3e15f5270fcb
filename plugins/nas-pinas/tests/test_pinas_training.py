"""Pi-NAS training components on real CIFAR-10: sampler, teacher, queue, loss, no labels, collapse."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import pytest
import torch

from nas_core.api import Batch, ConfigError, PathOutput, StepContext
from nas_core.testing import Run, Trainer, open_run
from nas_pinas.components import KEYS, QUEUE, CollapseGuard, CollapseWarning, CrossPathInfoNCE, MeanTeacher, path_parameters

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pinas-macro.yaml"

def tiny_run(run_dir: Path, *extra: str) -> Run:
    overrides = [
        f"run_dir={run_dir}", "device=cpu", "space.width=0.125", "data.train_subset=600", "data.val_subset=200",
        "train.batch_size=32", "train.progress=false", "train.tensorboard=false", "train.log_every_steps=1",
        "teacher.queue_size=96", "train.scheduler.warmup_steps=2", *extra,
    ]
    return open_run(CONFIG, overrides)


def test_cross_path_sampler_paths_differ_in_every_layer(tmp_path):
    run = tiny_run(tmp_path)
    sampler = run.sampler
    seen = set()
    for step in range(200):
        a, b = sampler.sample(step)
        assert len(a) == len(b) == len(run.space.layers)
        assert all(x != y for x, y in zip(a, b))
        seen.update(a)
        seen.update(b)
    assert seen == {0, 1, 2}  # every choice gets used
    state = sampler.state_dict()
    nxt = sampler.sample(200)
    sampler.load_state_dict(state)
    assert sampler.sample(200) == nxt


def test_label_loss_must_be_none(tmp_path):
    with pytest.raises(ConfigError, match=r"regularizer 'cross-path-infonce' needs train.label_loss: none \(the config has ce\)"):
        tiny_run(tmp_path, "train.label_loss=ce").check()


def test_the_views_are_cut_from_raw_images_not_from_the_loaders_pad_crops(tmp_path):
    """MoCo-v2 crops of an already pad-cropped image would carry its black borders into every view."""
    with pytest.raises(ConfigError, match=r"regularizer 'cross-path-infonce' needs data.augment: false \(the config has true\)"):
        tiny_run(tmp_path, "data.augment=true").check()
    tiny_run(tmp_path / "ok").check()


def _one_step(run: Run) -> tuple[Trainer, StepContext]:
    trainer = Trainer(run)
    captured = {}
    original = run.teacher.update

    def spy(ctx, outputs):
        captured["ctx"] = ctx
        captured["before"] = {"queue": run.teacher.queue.clone(), "ptr": run.teacher.ptr}
        original(ctx, outputs)

    run.teacher.update = spy
    trainer.train_step()
    run.teacher.update = original
    return trainer, captured


def test_teacher_updates_only_active_paths_and_queue_holds_mean_keys(tmp_path):
    run = tiny_run(tmp_path)
    trainer, captured = _one_step(run)
    ctx = captured["ctx"]
    teacher: MeanTeacher = run.teacher
    # queue: the slots after the old pointer hold (k0 + k1) / 2 of this step
    k0, k1 = ctx.extras[KEYS]
    n, ptr = len(k0), captured["before"]["ptr"]
    assert torch.allclose(teacher.queue[ptr : ptr + n], (k0 + k1) / 2)
    assert teacher.ptr == (ptr + n) % teacher.queue_size
    untouched = torch.ones(teacher.queue_size, dtype=torch.bool)
    untouched[ptr : ptr + n] = False
    assert torch.equal(teacher.queue[untouched], captured["before"]["queue"][untouched])

    # EMA: make the student differ from the teacher EVERYWHERE, update with two fixed paths,
    # and check exactly the active paths' parameters (and the neck's) moved.
    student, neck = run.supernet, run.regularizers[0].neck
    with torch.no_grad():
        for p in [*student.parameters(), *neck.parameters()]:
            p.add_(1.0)
    paths = [(0,) * 8, (1, 2, 1, 2, 1, 2, 1, 2)]
    active = {id(p) for path in paths for p in path_parameters(teacher.supernet, path)} | {id(p) for p in teacher.neck.parameters()}
    before = {id(p): p.detach().clone() for p in [*teacher.supernet.parameters(), *teacher.neck.parameters()]}
    fake = StepContext(run.context, 1, 0, ctx.batch, paths, student, extras=dict(ctx.extras), lr=ctx.lr)
    teacher.update(fake, [])
    moved = {id(p) for p in [*teacher.supernet.parameters(), *teacher.neck.parameters()] if not torch.equal(p, before[id(p)])}
    assert moved == active
    unused = [p for p in teacher.supernet.layers[0].candidates[2].parameters()]
    assert unused and all(id(p) not in moved for p in unused)
    # once per path: a parameter shared by both paths (the stem) moved twice: 1 - m^2 of the gap
    m = teacher.momentum
    stem_t, stem_s = next(teacher.supernet.stem.parameters()), next(student.stem.parameters())
    gap_before = stem_s - before[id(stem_t)]
    print(f"[margin] EMA moved the shared stem by 1 - m^2 of the gap: observed {float((stem_t - before[id(stem_t)] - gap_before * (1 - m**2)).abs().max()):.3g}, bound 1e-05")
    assert torch.allclose(stem_t - before[id(stem_t)], gap_before * (1 - m**2), atol=1e-5)


def test_cross_path_loss_uses_the_other_paths_key(tmp_path):
    run = tiny_run(tmp_path)
    reg: CrossPathInfoNCE = run.regularizers[0]
    _ = run.supernet
    torch.manual_seed(0)
    feats = torch.randn(4, reg.neck[0].in_features)
    keys = [torch.nn.functional.normalize(torch.randn(4, reg.neck_dim), dim=1) for _ in range(2)]
    queue = torch.nn.functional.normalize(torch.randn(16, reg.neck_dim), dim=1)
    ctx = StepContext(run.context, 0, 0, Batch(torch.zeros(4, 3, 32, 32)), [(0,) * 8, (1,) * 8], run.supernet, extras={KEYS: keys, QUEUE: queue}, lr=0.0)
    reg.neck.eval()
    loss = reg.path_loss(ctx, 0, PathOutput(feats, feats), None)
    q = reg.project(feats)
    logits = torch.cat([(q * keys[1]).sum(1, keepdim=True), q @ queue.t()], 1) / reg.temperature
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits, torch.zeros(4, dtype=torch.long)))
    reg.cross_path = False
    same = reg.path_loss(ctx, 0, PathOutput(feats, feats), None)
    assert not torch.allclose(same, loss)


def test_no_labels_are_read_during_supernet_training(tmp_path):
    """Same run twice, the second with every training label scrambled: identical weights, and
    the batches the components see carry no labels."""
    seen_labels = []

    def train(run_dir: Path, scramble: bool) -> dict:
        run = tiny_run(run_dir, "train.max_steps=3")
        if scramble:
            train_split = run.data.train
            train_split.labels = torch.randint(0, 10, train_split.labels.shape, generator=torch.Generator().manual_seed(1))
        original = run.teacher.prepare

        def spy(ctx):
            seen_labels.append(ctx.batch.labels)
            original(ctx)

        run.teacher.prepare = spy
        trainer = Trainer(run)
        trainer.fit()
        return {k: v.clone() for k, v in run.supernet.state_dict().items()}

    a = train(tmp_path / "a", False)
    b = train(tmp_path / "b", True)
    assert seen_labels == [None] * 6
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_component_state_is_weights_only_and_resumes(tmp_path):
    run = tiny_run(tmp_path / "r", "train.max_steps=2")
    Trainer(run).fit()
    for component in run.components().values():
        buffer = io.BytesIO()
        torch.save(component.state_dict(), buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)
    state = run.teacher.state_dict()
    other = tiny_run(tmp_path / "o")
    _ = other.supernet
    other.teacher.load_state_dict(state)
    assert torch.equal(other.teacher.queue, run.teacher.queue) and other.teacher.ptr == run.teacher.ptr
    assert all(torch.equal(x, y) for x, y in zip(other.teacher.supernet.parameters(), run.teacher.supernet.parameters()))
    # resume continues a run: 2 more steps from the checkpoint of the first 2
    resumed = tiny_run(tmp_path / "r", "train.max_steps=4")
    Trainer(resumed).fit(resume=True)
    assert resumed.teacher.ptr == (4 * 32) % 96


# The guard's threshold sits between the two regimes this test produces after 20 steps. Spread of
# normalised features over seeds 0-2 and ATEN_CPU_CAPABILITY=avx512 / avx2: without negatives it
# ends at 0.18-0.22, with negatives at 0.46-0.50 (lowest 6-step mean after the warm-up: 0.224
# and 0.463 at seed 0, the test's). The old threshold of 0.25 was 1.1x above the collapsed run,
# so a slightly slower collapse elsewhere would go unflagged. 0.32 is ~1.4x from both regimes,
# and over 4.5 standard deviations (~0.02) of their seed-to-seed spread from the nearer edge.
COLLAPSE_THRESHOLD = 0.32


def lowest_window_mean(run_dir: Path, warmup: int, window: int) -> float:
    """The lowest mean spread over ``window`` consecutive steps after ``warmup``, as the guard sees it."""
    spreads = [json.loads(line)["pinas/feat_std"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return min(sum(spreads[i - window + 1 : i + 1]) / window for i in range(max(warmup, window - 1), len(spreads)))


@pytest.mark.slow
def test_trivial_teacher_without_negatives_is_detected_as_collapse(tmp_path):
    """20 steps on real CIFAR-10: without the queue of negatives the features collapse and the
    guard flags it; with negatives (same seed, same steps) they keep their spread."""
    common = ["train.max_steps=20", "pinas.collapse_warmup=12", "pinas.collapse_window=6", f"pinas.collapse_threshold={COLLAPSE_THRESHOLD}"]
    results = {}
    for negatives in (False, True):
        run = tiny_run(tmp_path / str(negatives), *common, f"regularizers.0.negatives={negatives}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metrics = Trainer(run).fit()
        results[negatives] = (metrics, [w for w in caught if issubclass(w.category, CollapseWarning)], run.regularizers[0].guard)
        print(f"[margin] lowest 6-step spread {'with' if negatives else 'without'} negatives: "
              f"observed {lowest_window_mean(tmp_path / str(negatives), 12, 6):.3g}, bound {COLLAPSE_THRESHOLD}")
    metrics, warned, guard = results[False]
    assert guard.collapsed and warned and metrics["pinas/collapse"] == 1.0
    metrics_ok, warned_ok, guard_ok = results[True]
    assert not guard_ok.collapsed and not warned_ok and metrics_ok["pinas/collapse"] == 0.0
    # Final spread with minus without negatives: 0.24-0.31 over the seeds and instruction sets above.
    gap = metrics_ok["pinas/feat_std"] - metrics["pinas/feat_std"]
    print(f"[margin] final spread with - without negatives: observed {gap:.3g}, bound 0.1")
    assert gap > 0.1, (metrics_ok["pinas/feat_std"], metrics["pinas/feat_std"])


def test_the_collapse_flag_follows_the_spread_and_a_recovery_shows():
    """A dip below the threshold after the warm-up is flagged while it lasts, warns when it begins,
    and the flag returns to 0 when the spread recovers; the state survives a checkpoint."""
    guard = CollapseGuard(threshold=0.2, warmup=2, window=2)
    spreads = [0.1, 0.1, 0.1, 0.1, 0.5, 0.5, 0.5, 0.1, 0.1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flags = [guard.observe(step, spread)["pinas/collapse"] for step, spread in enumerate(spreads)]
    assert flags == [0, 0, 1, 1, 0, 0, 0, 0, 1]
    assert len([w for w in caught if issubclass(w.category, CollapseWarning)]) == 2
    assert guard.collapsed and guard.collapsed_at == 2
    resumed = CollapseGuard(threshold=0.2, warmup=2, window=2)
    resumed.load_state_dict(guard.state_dict())
    assert resumed.collapsing and resumed.observe(9, 0.1)["pinas/collapse"] == 1.0


def test_a_stopped_and_resumed_run_equals_the_straight_run(tmp_path):
    """Stopped after 2 of 4 steps and resumed: the student and every component's state (the
    teacher with its queue and pointer, the loss's generator and collapse guard, the sampler)
    equal the uninterrupted run's (the study's seed 1 was resumed mid-training; this says
    whether that can change a result)."""
    straight = tiny_run(tmp_path / "straight", "train.max_steps=4")
    Trainer(straight).fit()
    stopped = tiny_run(tmp_path / "stopped", "train.max_steps=4")
    trainer = Trainer(stopped)
    for _ in range(2):
        trainer.train_step()
    trainer.save()
    resumed = tiny_run(tmp_path / "stopped", "train.max_steps=4")
    Trainer(resumed).fit(resume=True)
    assert same_state(straight.supernet.state_dict(), resumed.supernet.state_dict())
    components, resumed_components = straight.components(), resumed.components()
    assert "queue" in components["teacher"].state_dict() and components.keys() == resumed_components.keys()
    for name, component in components.items():
        assert same_state(component.state_dict(), resumed_components[name].state_dict()), name


def same_state(a, b) -> bool:
    """Nested state (dicts, lists, tensors, numbers) equal exactly."""
    if torch.is_tensor(a):
        return torch.is_tensor(b) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    return a == b
