"""The teacher's rules: teacher choice, rho, stored outputs, meta update, and the loss."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from nas_core.api import Batch, NasError, PathOutput, StepContext, accuracy, evaluation_data, preserved_bn_state
from nas_core.testing import Trainer

from nas_cream.board import BoardEntry
from nas_cream.regularizer import CreamDistill, CreamDistillOptions, distill_loss
from nas_cream.teacher import CreamTeacher, CreamTeacherOptions

PATH = (1, 2, 1)


def batch_of(run, n=16):
    data = run.data.train
    images = (data.images[:n].float() / 255 - 0.5) / 0.25
    return Batch(images, data.labels[:n])


def fill_board(teacher, supernet, archs, k=4):
    """Board entries measured like the trainer does: each path's own outputs on its images."""
    for step, arch in enumerate(archs):
        images = torch.randn(k, 3, 8, 8, generator=torch.Generator().manual_seed(step))
        with torch.no_grad():
            probs = F.softmax(supernet(images, arch), 1)
        teacher.board.offer(BoardEntry(arch, 90.0 - 10 * step, 1000 + step, images, probs, step))


def ctx_at(run, step, batch, paths=(PATH,)):
    return StepContext(run.context, step, 0, batch, list(paths), run.supernet, lr=run.context.schedule.lr_at(step))


@pytest.fixture
def teacher(cream_run):
    cream_run.supernet.train()
    teacher = cream_run.teacher
    fill_board(teacher, cream_run.supernet, [(0, 0, 0), (2, 2, 2), (1, 1, 1)])
    return teacher


def test_teacher_is_argmax_of_meta_scores_and_rho_comes_from_that_entry(cream_run, teacher):
    supernet = cream_run.supernet
    # a meta network whose scores make the middle entry the argmax (not the first, not the last)
    with torch.no_grad():
        student = F.softmax(supernet(torch.cat([e.images for e in teacher.board]), PATH), 1).view(3, 4, -1)
        diff = (student - teacher.board.probs()).flatten(1)
        target = torch.tensor([-1.0, 2.0, -0.5])
        solution = torch.linalg.lstsq(diff, target.unsqueeze(1)).solution.squeeze(1)
        teacher.meta.linear.weight.copy_(solution.unsqueeze(0))
        teacher.meta.linear.bias.zero_()
    batch = batch_of(cream_run)
    ctx = ctx_at(cream_run, 10, batch)
    before = copy.deepcopy(supernet.state_dict())
    teacher.prepare(ctx)
    info = ctx.extras["cream"]
    # preparing targets leaves weights and BN statistics alone
    assert all(torch.equal(before[k], v) for k, v in supernet.state_dict().items())
    # independent recomputation: w_B = M(softmax(student(x_B)) - p_B), all stored images in one pass
    with torch.no_grad():
        student = F.softmax(supernet(torch.cat([e.images for e in teacher.board]), PATH), 1).view(3, 4, -1)
        w = torch.stack([teacher.meta((student[i] - e.probs).unsqueeze(0))[0] for i, e in enumerate(teacher.board)])
    assert info["active"] and info["teacher_index"] == [int(torch.argmax(w))] == [1]
    assert info["teacher_arch"] == [(2, 2, 2)]
    print(f"[margin] rho vs its recomputation: observed {abs(info['rho'][0] - float(torch.sigmoid(-w[1]))):.3g}, bound 1e-05")
    assert info["rho"][0] == pytest.approx(float(torch.sigmoid(-w[1])), abs=1e-5)
    assert info["rho"][0] != pytest.approx(float(torch.sigmoid(-w[-1])), abs=1e-3)  # not the last entry's
    with torch.no_grad():
        expected = F.softmax(supernet(batch.inputs, (2, 2, 2)), 1)
    assert torch.allclose(info["teacher_probs"][0], expected, atol=1e-6)


def test_board_entries_store_their_own_outputs(cream_run, teacher):
    supernet = cream_run.supernet
    batch = batch_of(cream_run)
    ctx = ctx_at(cream_run, 10, batch)
    teacher.options = teacher.options.model_copy(update={"admission_data": "batch"})  # the reference's rule
    teacher.prepare(ctx)
    teacher_probs = ctx.extras["cream"]["teacher_probs"][0]
    with torch.no_grad():
        logits = supernet(batch.inputs, PATH)
    teacher.board.gap = -100.0  # admit whatever comes
    teacher.update(ctx, [PathOutput(torch.zeros(16, 1), logits)])
    stored = next(e for e in teacher.board if e.arch == PATH)
    assert torch.equal(stored.images, batch.inputs[:4])
    assert torch.allclose(stored.probs, F.softmax(logits[:4], 1))
    assert not torch.allclose(stored.probs, teacher_probs[:4], atol=1e-3)
    assert stored.acc == pytest.approx(100.0 * float((logits.argmax(1) == batch.labels).float().mean()))


def test_admissions_are_scored_on_one_fixed_held_out_set(cream_run, teacher):
    """``admission_data: heldout`` (the default): a path's board accuracy is its top-1 on the same
    held-out val images whatever the training batch was -- two batches, one score -- computed
    in train-mode BN with the supernet's running statistics left as they were."""
    supernet = cream_run.supernet
    assert teacher.options.admission_data == "heldout"
    teacher.options = teacher.options.model_copy(update={"admission_images": 32})
    teacher.board.gap = -100.0  # admit whatever comes
    data = cream_run.data.val
    held = evaluation_data(cream_run.context, split="val", bn_recal_batches=0, max_images=32)
    assert len(held.images) == 32 < len(data)
    with torch.no_grad(), preserved_bn_state(supernet):
        supernet.train()
        expected = accuracy(lambda x: supernet(x, PATH), held.images, held.labels, cream_run.config.train.batch_size)
    scores = []
    for start in (0, 16):
        batch = Batch(batch_of(cream_run, 32).inputs[start : start + 16], cream_run.data.train.labels[start : start + 16])
        with torch.no_grad():
            logits = supernet(batch.inputs, PATH)  # the training step's own forward (train-mode BN moves the statistics)
        buffers = {k: v.clone() for k, v in supernet.state_dict().items() if "running" in k}
        ctx = ctx_at(cream_run, 10, batch)
        teacher.update(ctx, [PathOutput(torch.zeros(16, 1), logits)])
        assert all(torch.equal(v, supernet.state_dict()[k]) for k, v in buffers.items())  # scoring the admission left them
        scores.append(next(e for e in teacher.board if e.arch == PATH).acc)
        assert ctx.metrics["cream/admission_acc"] == scores[-1] and ctx.metrics["cream/admitted"] == 1.0
    assert scores == [expected, expected]
    assert teacher.admission_set() is teacher.admission_set()  # built once


def test_teacher_logs_rho_board_and_meta_diagnostics_every_step(cream_run, teacher):
    batch = batch_of(cream_run)
    early = ctx_at(cream_run, 3, batch)  # warm-up: logged too, as zeros (same keys every step)
    teacher.prepare(early)
    teacher.update(early, [PathOutput(torch.zeros(16, 1), cream_run.supernet(batch.inputs, PATH).detach())])
    ctx = ctx_at(cream_run, 11, batch)  # not a meta-update step of its own (those are 7, 10, 13, ...)
    teacher.prepare(ctx)
    teacher._meta_update(ctx)
    teacher.update(ctx, [PathOutput(torch.zeros(16, 1), cream_run.supernet(batch.inputs, PATH).detach())])
    assert set(early.metrics) == set(ctx.metrics)
    assert early.metrics["cream/active"] == 0.0 and early.metrics["cream/meta_grad_norm"] == 0.0
    assert ctx.metrics["cream/active"] == 1.0 and ctx.metrics["cream/rho"] == pytest.approx(ctx.extras["cream"]["rho"][0])
    assert ctx.metrics["cream/meta_grad_norm"] == teacher.last_meta["grad_norm"] > 0
    assert ctx.metrics["cream/meta_weight_change"] > 0 and ctx.metrics["cream/meta_updates"] == 1.0
    assert ctx.metrics["cream/board_size"] == len(teacher.board)
    assert ctx.metrics["cream/board_mean_acc"] == pytest.approx(sum(e.acc for e in teacher.board) / len(teacher.board))


# Steps whose teacher was another path, checked against the bound of 3: 12 steps gave 5 (within
# 2x of the bound), 24 steps give 13 (4.3x), room for a run whose board evolves differently.
STEPS_CHECKED = 24


def test_stored_outputs_in_real_training_are_the_paths_own(nas_kit, cream_config):
    """Through the trainer: every admitted entry holds softmax of ITS OWN step's logits."""
    run, _ = nas_kit.open(cream_config)
    trainer = Trainer(run)
    teacher = run.teacher
    seen = []
    original = teacher.update

    def spy(ctx, outputs):
        original(ctx, outputs)
        seen.append((ctx.step, ctx.paths[0], ctx.extras["cream"], ctx.batch.student_input(0)[:4].clone(), outputs[0].logits[:4].clone()))

    teacher.update = spy
    checked_with_teacher = 0
    for _ in range(STEPS_CHECKED):
        trainer.train_step()
        step, path, info, images, logits = seen[-1]
        fresh = [e for e in teacher.board if e.step == step]
        if fresh:
            assert torch.equal(fresh[0].images, images)
            assert torch.allclose(fresh[0].probs, F.softmax(logits, 1))
            if info["active"] and run.space.canonical(info["teacher_arch"][0]) != run.space.canonical(path):  # a path may teach itself
                assert not torch.allclose(fresh[0].probs, info["teacher_probs"][0][:4], atol=1e-4)
                checked_with_teacher += 1
    print(f"[margin] steps checked against a different teacher: observed {checked_with_teacher}, bound 3")
    assert checked_with_teacher >= 3


def test_meta_update_changes_the_meta_network_and_only_it(cream_run, teacher):
    supernet = cream_run.supernet
    batch = batch_of(cream_run)
    ctx = ctx_at(cream_run, 10, batch)
    weights = copy.deepcopy(supernet.state_dict())
    meta_before = copy.deepcopy(teacher.meta.state_dict())
    teacher._meta_update(ctx)
    assert teacher.meta_updates == 1
    assert any(not torch.equal(meta_before[k], v) for k, v in teacher.meta.state_dict().items())
    assert all(torch.equal(weights[k], v) for k, v in supernet.state_dict().items())  # weights and BN buffers
    assert all(p.grad is None for p in supernet.parameters())
    assert teacher.last_meta["grad_norm"] > 0 and 0 < teacher.last_meta["rho"] < 1


def test_no_teacher_and_no_board_during_warm_up(cream_run):
    teacher = cream_run.teacher
    batch = batch_of(cream_run)
    ctx = ctx_at(cream_run, 3, batch)  # warm-up is 4 steps
    teacher.prepare(ctx)
    assert ctx.extras["cream"] == {"active": False}
    with torch.no_grad():
        logits = cream_run.supernet(batch.inputs, PATH)
    teacher.update(ctx, [PathOutput(torch.zeros(16, 1), logits)])
    assert len(teacher.board) == 0
    ctx = ctx_at(cream_run, 4, batch)
    teacher.update(ctx, [PathOutput(torch.zeros(16, 1), logits)])
    assert len(teacher.board) == 1


def test_distillation_loss_is_half_rho_kd_plus_two_minus_rho_ce(cream_run, teacher):
    batch = batch_of(cream_run)
    ctx = ctx_at(cream_run, 10, batch)
    teacher.prepare(ctx)
    info = ctx.extras["cream"]
    logits = torch.randn(16, 4, requires_grad=True)
    ce = F.cross_entropy(logits, batch.labels)
    loss = CreamDistill(cream_run.context, CreamDistillOptions()).path_loss(ctx, 0, PathOutput(torch.zeros(16, 1), logits), ce)
    kd = -(info["teacher_probs"][0] * F.log_softmax(logits, 1)).sum(1).mean()
    rho = info["rho"][0]
    assert float(loss.detach()) == pytest.approx(float((0.5 * (rho * kd + (2 - rho) * ce)).detach()), rel=1e-6)
    assert float(distill_loss(torch.tensor(2.0), torch.tensor(4.0), 0.5)) == pytest.approx(0.5 * (0.5 * 4 + 1.5 * 2))
    # during warm-up the label loss passes through untouched
    early = ctx_at(cream_run, 0, batch)
    teacher.prepare(early)
    assert CreamDistill(cream_run.context, CreamDistillOptions()).path_loss(early, 0, PathOutput(torch.zeros(16, 1), logits), ce) is ce


def test_teacher_state_is_weights_only_safe_and_restores(cream_run, teacher, tmp_path):
    teacher._meta_update(ctx_at(cream_run, 10, batch_of(cream_run)))
    path = tmp_path / "state.pt"
    torch.save(teacher.state_dict(), path)
    state = torch.load(path, weights_only=True)
    other = CreamTeacher(cream_run.context, CreamTeacherOptions(board_size=4, meta_update_every=3, meta_lr=0.01))
    other.load_state_dict(state)
    assert [e.arch for e in other.board] == [e.arch for e in teacher.board]
    assert all(torch.equal(a, b) for a, b in zip(other.meta.parameters(), teacher.meta.parameters()))
    assert other.meta_optimizer.state_dict()["state"][0]["step"] == teacher.meta_optimizer.state_dict()["state"][0]["step"]
    assert other.meta_updates == 1


def test_board_history_snapshots_the_board_every_n_steps_and_survives_a_checkpoint(nas_kit, cream_config, tmp_path):
    """``board_history_every: 3`` with a warm-up of 4 and 14 steps: snapshots after 6, 9 and 12
    steps (not 3: warm-up; not 14: not a multiple), each the board of that moment, best first;
    plain values that a ``weights_only`` load reads back; a state from before the history loads."""
    cream_config["teacher"]["board_history_every"] = 3
    run, _ = nas_kit.open(cream_config)
    trainer = Trainer(run)
    teacher = run.teacher
    boards = {}
    for _ in range(14):
        trainer.train_step()
        boards[trainer.step] = ([list(e.arch) for e in teacher.board], [e.acc for e in teacher.board])
    history = teacher.board_history
    assert [s["step"] for s in history] == [6, 9, 12]
    for snapshot in history:
        assert (snapshot["archs"], snapshot["acc"]) == boards[snapshot["step"]]
        assert snapshot["acc"] == sorted(snapshot["acc"], reverse=True)
    assert len(history[0]["archs"]) <= 2 < len(history[-1]["archs"])  # two active steps by step 6, the board of then
    history[0]["archs"].clear()
    assert teacher.board_history[0]["archs"] == boards[6][0]  # a copy: the teacher's own is untouched

    path = tmp_path / "state.pt"
    torch.save(teacher.state_dict(), path)
    state = torch.load(path, weights_only=True)
    restored = CreamTeacher(run.context, teacher.options)
    restored.load_state_dict(state)
    assert restored.board_history == teacher.board_history

    del state["board_history"]
    old = CreamTeacher(run.context, teacher.options)
    old.load_state_dict(state)
    assert old.board_history == [] and [e.arch for e in old.board] == [e.arch for e in teacher.board]

    batch = batch_of(run)
    with torch.no_grad():
        logits = run.supernet(batch.inputs, PATH)
    for every, expected in ((250, [250]), (0, [])):  # the default, and off
        fresh = CreamTeacher(run.context, teacher.options.model_copy(update={"board_history_every": every}))
        fresh.update(ctx_at(run, 249, batch), [PathOutput(torch.zeros(16, 1), logits)])
        assert len(fresh.board) == 1 and [s["step"] for s in fresh.board_history] == expected


def test_components_refuse_configs_they_cannot_work_with(nas_kit):
    with pytest.raises(NasError, match="regularizer 'cream' needs teacher 'cream' to supply its targets; the config's teacher is none"):
        run, _ = nas_kit.open({"plugins": {"enable": ["cream"]}, "regularizers": [{"name": "cream"}]})
        run.check()
    with pytest.raises(NasError, match="3 choices"):
        run, _ = nas_kit.open({"plugins": {"enable": ["cream"]}, "sampler": {"name": "cream", "prior": "categorical"}})
        run.sampler


def test_board_refresh_rescores_every_entry_with_the_current_weights(cream_run, teacher):
    """``board_refresh_every``: the fixture's entries carry made-up admission accuracies (90, 80,
    70); after a refresh step each entry holds its held-out top-1 under the current weights and
    its own current outputs on its stored images, the board is re-sorted, BN statistics are left
    as they were; a step that is not a multiple leaves the entries alone."""
    supernet = cream_run.supernet
    teacher.options = teacher.options.model_copy(update={"admission_images": 32, "board_refresh_every": 11})
    held = evaluation_data(cream_run.context, split="val", bn_recal_batches=0, max_images=32)
    batch = batch_of(cream_run)
    with torch.no_grad():
        logits = supernet(batch.inputs, PATH)
    teacher.update(ctx_at(cream_run, 9, batch), [PathOutput(torch.zeros(16, 1), logits)])  # 10 steps done: no refresh
    assert [e.acc for e in teacher.board if e.arch != PATH] == [90.0, 80.0, 70.0]

    buffers = {k: v.clone() for k, v in supernet.state_dict().items() if "running" in k}
    teacher.update(ctx_at(cream_run, 10, batch), [PathOutput(torch.zeros(16, 1), logits)])  # 11 steps done: refresh
    assert all(torch.equal(v, supernet.state_dict()[k]) for k, v in buffers.items())
    with torch.no_grad(), preserved_bn_state(supernet):
        supernet.train()
        for entry in teacher.board:
            expected = accuracy(lambda x: supernet(x, entry.arch), held.images, held.labels, cream_run.config.train.batch_size)
            assert entry.acc == expected
            assert torch.allclose(entry.probs, F.softmax(supernet(entry.images, entry.arch), 1))
    accs = [e.acc for e in teacher.board]
    assert accs == sorted(accs, reverse=True) and 90.0 not in accs


def test_board_refresh_needs_the_held_out_yardstick():
    with pytest.raises(ValueError, match="board_refresh_every re-scores entries on the held-out set: it needs admission_data: heldout"):
        CreamTeacherOptions(board_refresh_every=250, admission_data="batch")
