"""The Cream teacher: prioritized path board + meta-matching network + the network's optimiser.

``prepare(ctx)`` (before the step's forward passes), once the warm-up is over and the board is
not empty, for every path of the step: scores each board entry with the meta network, takes the
argmax entry as the teacher and rho = sigmoid(-w) of that same entry, and computes the
teacher's soft targets on the path's own input batch (no gradient). It puts them in
``ctx.extras["cream"]`` for the ``cream`` regularizer.

``update(ctx, outputs)`` (after the optimiser step): every ``meta_update_every`` steps after the
warm-up, one meta-gradient update of the meta network (:func:`nas_cream.meta.meta_step`; the
first ``meta_slice`` images of the batch drive the virtual step, the next ``meta_slice`` are the
held-out images); then each path of the step is offered to the board with its admission
accuracy, its MACs, its first ``stored_images`` images and its own softmax outputs on them.

Admission accuracy (``admission_data``): ``heldout`` (default) scores every path on the same
fixed set of ``admission_images`` held-out images (a seeded stratified subset of the val split,
in batches of the training batch size, train-mode BN with the running statistics restored), so
entries are compared on one yardstick; ``batch`` is the reference's rule, top-1 on the step's
own training batch (pre-update logits) -- one batch of 128 images moves a path's accuracy by
several points, as much as the admission gap. The held-out passes are forward-only cost.

Logged every step (``StepContext.metrics``): ``cream/active``; ``cream/rho`` (mean matching
score of the step's chosen teachers, 0 while inactive); ``cream/admission_acc`` (mean admission
accuracy of the step's paths, 0 while inactive), ``cream/admitted`` (paths that entered or
updated the board), ``cream/board_size``, ``cream/board_mean_acc``; and of the latest meta
update, ``cream/meta_updates``, ``cream/meta_grad_norm`` (before clipping),
``cream/meta_weight_change`` (how far that update moved M's parameters, L2),
``cream/meta_rho`` and ``cream/meta_heldout_ce`` (all 0 before the first update).

Board over training (``board_history_every``, default 250, 0 = off): after the board update
of every step whose count of finished steps is a multiple of it (and the warm-up over), a
snapshot ``{"step": steps done, "archs": [[int choice per layer], ...] best first, "acc":
[admission accuracy, ...]}`` is appended to :attr:`CreamTeacher.board_history`. Plain lists,
no images: 15,625 steps at 250 give at most 62 snapshots of K = 10 entries, a few kilobytes.
The last snapshot is at the last multiple, not necessarily the final step (the final board is
``teacher.board``). The ranking study (``benchmarks/study.py``) compares the snapshots' ground
truth with a random path's.

Board refresh (``board_refresh_every``, default 0 = never, the paper's rule): every that many
steps past the warm-up, each board entry is re-scored on the held-out admission set with the
CURRENT weights, and its stored outputs are recomputed on its stored images, then the board is
re-sorted. Without it an entry keeps the accuracy it was admitted with: as the supernet trains,
every path gets better, so a late path beats an early entry by the gap because the weights
improved, not because the path is better. In the study's 2M-path-image Cream run the final
board's entries were all admitted in the last third of training and their ground truth was a
random path's (+0.3 points). Needs ``admission_data: heldout``. Cost: K held-out passes per
refresh (K = 10, 256 images, every 250 steps: under 1% of the steps' passes).

Everything -- board, its history, meta weights, meta optimiser, counters -- is in
``state_dict()`` as plain tensors / numbers / lists, so ``--resume`` continues exactly and
``nas search`` gets the board. A checkpoint from before the history existed loads with an
empty history.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from nas_core.api import (
    Arch,
    ComponentContext,
    EvaluationData,
    NasError,
    PathOutput,
    Section,
    StepContext,
    Supernet,
    Teacher,
    accuracy,
    evaluation_data,
    preserved_bn_state,
)

from nas_cream.board import BoardEntry, PathBoard
from nas_cream.meta import MetaMatchingNetwork, choose_teacher, meta_scores, meta_step, student_probs_on_board
from nas_cream.settings import warmup_end


def snapshot(step: int, archs: Sequence[Sequence[int]], accs: Sequence[float]) -> dict[str, Any]:
    """One board snapshot as plain Python values (``torch.load(weights_only=True)`` reads it)."""
    return {"step": int(step), "archs": [[int(c) for c in a] for a in archs], "acc": [float(a) for a in accs]}


class CreamTeacherOptions(Section):
    board_size: int = Field(10, gt=0, description="K, entries on the prioritized path board")
    admission: Literal["gap-or-flops", "gap"] = Field("gap-or-flops", description="gap: accuracy gap only")
    acc_gap: float = Field(5.0, ge=0, description="accuracy points a path must beat the worst entry by")
    stored_images: int = Field(4, gt=0, description="images (and the path's outputs on them) kept per entry")
    meta_update_every: int = Field(200, ge=0, description="steps between meta-network updates (0: never)")
    meta_lr: float = Field(1e-4, gt=0)
    meta_optimizer: Literal["adam", "sgd"] = "adam"
    meta_grad_clip: float = Field(1.0, gt=0)
    meta_slice: int | None = Field(None, gt=0, description="images per virtual step / held-out set (default: half the batch)")
    virtual_lr: float | None = Field(None, gt=0, description="lr of the virtual step (default: the supernet's scheduled lr)")
    admission_data: Literal["heldout", "batch"] = Field(
        "heldout", description="heldout: score paths for the board on a fixed held-out set; batch: on the step's training batch (the reference)"
    )
    admission_images: int = Field(256, gt=0, description="size of the fixed held-out set (a stratified subset of the val split)")
    board_history_every: int = Field(250, ge=0, description="steps between snapshots of the board's archs and accuracies (0: none)")
    board_refresh_every: int = Field(
        0, ge=0, description="steps between re-scoring every board entry with the current weights on the held-out set (0: never, the paper's rule)"
    )

    @model_validator(mode="after")
    def _refresh_needs_heldout(self) -> "CreamTeacherOptions":
        if self.board_refresh_every and self.admission_data != "heldout":
            raise ValueError("board_refresh_every re-scores entries on the held-out set: it needs admission_data: heldout")
        return self


class CreamTeacher(Teacher):
    """Prioritized paths as teachers, chosen per step by a meta-matching network."""

    def __init__(self, context: ComponentContext, options: CreamTeacherOptions):
        self.context = context
        self.options = options
        self.space = context.space
        self.device = context.device
        self.board = PathBoard(options.board_size, options.acc_gap, options.admission, key=self.space.canonical)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(context.seed * 31 + 5)
            self.meta = MetaMatchingNetwork(self.space.num_classes, options.stored_images).to(self.device)
        params = list(self.meta.parameters())
        lr = options.meta_lr
        self.meta_optimizer = torch.optim.Adam(params, lr=lr) if options.meta_optimizer == "adam" else torch.optim.SGD(params, lr=lr, momentum=0.9)
        self.meta_updates = 0
        self.last_meta: dict[str, float] = {}
        self._board_history: list[dict[str, Any]] = []
        self._admission: EvaluationData | None = None

    def requires(self) -> Mapping[str, Any]:
        # board accuracy and distillation are supervised
        return {**super().requires(), "train.label_loss": "ce"}

    def check(self, context: ComponentContext) -> None:
        if context.world_size > 1:
            # board admission, stored images and meta updates are per process; until they are
            # reduced across ranks the ranks would drift apart, so refuse rather than diverge
            raise NasError("teacher 'cream' does not run under torchrun yet (its board and meta network are per process); train it in one process")

    # ------------------------------------------------------------------ schedule

    @cached_property
    def warmup_end(self) -> int:
        return warmup_end(self.context)

    def active(self, step: int) -> bool:
        return step >= self.warmup_end

    # ------------------------------------------------------------------ the two calls

    def prepare(self, ctx: StepContext) -> None:
        info: dict[str, Any] = {"active": False}
        ctx.extras["cream"] = info
        ctx.metrics.update({"cream/active": 0.0, "cream/rho": 0.0})
        if not self.active(ctx.step) or not len(self.board):
            return
        rhos, targets, indices, scores = [], [], [], []
        for index, path in enumerate(ctx.paths):
            with torch.no_grad():
                choice = choose_teacher(meta_scores(self.meta, student_probs_on_board(ctx.supernet, path, self.board), self.board))
                with preserved_bn_state(ctx.supernet):
                    ctx.supernet.train()
                    teacher_logits = ctx.supernet(ctx.batch.student_input(index), self.board[choice.index].arch)
            rhos.append(float(choice.rho))
            targets.append(F.softmax(teacher_logits, dim=1))
            indices.append(choice.index)
            scores.append(choice.scores.tolist())
        info.update(active=True, rho=rhos, teacher_probs=targets, teacher_index=indices, meta_scores=scores,
                    teacher_arch=[self.board[i].arch for i in indices])
        ctx.metrics.update({"cream/active": 1.0, "cream/rho": sum(rhos) / len(rhos)})

    def update(self, ctx: StepContext, outputs: Sequence[PathOutput]) -> None:
        accs: list[float] = []
        admitted = 0
        if self.active(ctx.step):
            since = ctx.step - self.warmup_end
            every = self.options.meta_update_every
            if every and since > 0 and since % every == 0 and len(self.board):
                self._meta_update(ctx)
            for index, (path, output) in enumerate(zip(ctx.paths, outputs)):
                logits = output.logits.detach()
                acc = self.admission_accuracy(ctx.supernet, path, logits, ctx.batch.labels)
                k = self.options.stored_images
                entry = BoardEntry(
                    tuple(int(c) for c in path), acc, int(self.space.complexity(path)[0]),
                    ctx.batch.student_input(index)[:k].detach().clone(), F.softmax(logits[:k], dim=1).clone(), ctx.step,
                )
                admitted += int(self.board.offer(entry))
                accs.append(acc)
            refresh = self.options.board_refresh_every
            if refresh and (ctx.step + 1) % refresh == 0:
                self.refresh_board(ctx.supernet)
            every = self.options.board_history_every
            if every and (ctx.step + 1) % every == 0:
                self._board_history.append(self.board_snapshot(ctx.step + 1))
        ctx.metrics.update(self.step_metrics(accs, admitted))

    @property
    def board_history(self) -> list[dict[str, Any]]:
        """Snapshots of the board over training, oldest first (a copy; see the module doc):
        ``{"step": steps done, "archs": [[choice per layer], ...] best first, "acc": [admission
        accuracy (%), ...]}``."""
        return [snapshot(s["step"], s["archs"], s["acc"]) for s in self._board_history]

    def board_snapshot(self, step: int) -> dict[str, Any]:
        """The board's archs and admission accuracies now, best first."""
        return snapshot(step, [e.arch for e in self.board], [e.acc for e in self.board])

    def refresh_board(self, supernet: Supernet) -> None:
        """Re-score every entry on the held-out set with the current weights and recompute its
        own outputs on its stored images (train-mode BN, statistics restored); re-sort."""
        for entry in self.board:
            entry.acc = self.heldout_accuracy(supernet, entry.arch)
            with torch.no_grad(), preserved_bn_state(supernet):
                supernet.train()
                entry.probs = F.softmax(supernet(entry.images, entry.arch), dim=1)
        self.board.sort()

    def admission_accuracy(self, supernet: Supernet, path: Arch, logits: torch.Tensor, labels: torch.Tensor) -> float:
        """Top-1 (%) a path is admitted to the board with: on the fixed held-out set
        (``admission_data: heldout``), or from its pre-update logits on the training batch."""
        if self.options.admission_data == "batch":
            return 100.0 * float((logits.argmax(1) == labels).float().mean())
        return self.heldout_accuracy(supernet, path)

    def heldout_accuracy(self, supernet: Supernet, path: Arch) -> float:
        """Top-1 (%) of ``path`` on the fixed held-out set, train-mode BN, statistics restored."""
        data = self.admission_set()
        chunk = self.context.config.train.batch_size
        with torch.no_grad(), preserved_bn_state(supernet):
            supernet.train()
            return accuracy(lambda x: supernet(x, path), data.images, data.labels, chunk)

    def admission_set(self) -> EvaluationData:
        """The fixed held-out images paths are admitted on (built once, on the run's device)."""
        if self._admission is None:
            self._admission = evaluation_data(self.context, split="val", bn_recal_batches=0, max_images=self.options.admission_images)
        return self._admission

    def step_metrics(self, accs: Sequence[float], admitted: int) -> dict[str, float]:
        """What the step did to the board, and the latest meta update (see the module doc)."""
        entries = list(self.board)
        last = self.last_meta
        return {
            "cream/admission_acc": sum(accs) / len(accs) if accs else 0.0,
            "cream/admitted": float(admitted),
            "cream/board_size": float(len(entries)),
            "cream/board_mean_acc": sum(e.acc for e in entries) / len(entries) if entries else 0.0,
            "cream/meta_updates": float(self.meta_updates),
            **{f"cream/meta_{key}": float(last.get(key, 0.0)) for key in ("grad_norm", "weight_change", "rho", "heldout_ce")},
        }

    def _meta_update(self, ctx: StepContext) -> None:
        images, labels = ctx.batch.student_input(0), ctx.batch.labels
        half = self.options.meta_slice or max(1, len(images) // 2)
        if 2 * half > len(images):
            raise NasError(f"teacher 'cream': meta_slice {half} needs a batch of at least {2 * half} images")
        virtual_lr = self.options.virtual_lr if self.options.virtual_lr is not None else ctx.lr  # the step's own lr
        before = [p.detach().clone() for p in self.meta.parameters()]
        self.last_meta = meta_step(
            self.meta, self.meta_optimizer, ctx.supernet, ctx.paths[0], self.board,
            images[:half], images[half : 2 * half], labels[half : 2 * half], virtual_lr, self.options.meta_grad_clip,
        )
        moved = sum(float((p.detach() - b).pow(2).sum()) for p, b in zip(self.meta.parameters(), before))
        self.last_meta["weight_change"] = moved**0.5
        self.meta_updates += 1

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "board": self.board.state_dict(),
            "meta": {k: v.detach().cpu().clone() for k, v in self.meta.state_dict().items()},
            "meta_optimizer": self.meta_optimizer.state_dict(),
            "meta_updates": self.meta_updates,
            "last_meta": dict(self.last_meta),
            "board_history": self.board_history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.board.load_state_dict(state["board"], self.device)
        self.meta.load_state_dict(state["meta"])
        self.meta_optimizer.load_state_dict(state["meta_optimizer"])
        self.meta_updates = int(state["meta_updates"])
        self.last_meta = {k: float(v) for k, v in state.get("last_meta", {}).items()}
        self._board_history = [snapshot(s["step"], s["archs"], s["acc"]) for s in state.get("board_history", [])]  # absent before it existed
