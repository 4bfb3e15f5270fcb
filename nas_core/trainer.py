"""The supernet training loop.

One optimiser step: load a batch, let regularizers prepare it, ask the sampler for the step's
paths, let the teacher prepare targets, then for every path run forward, build the loss
(label loss -> each regularizer -> extra-loss hooks) and backward -- gradients of all paths
accumulate -- and make ONE optimiser step. Parameters a step did not use have no gradient, so
SGD's momentum and weight decay leave them alone. When a regularizer couples the step's paths
(``needs_step_loss``), every path's graph is kept until all paths have run, the regularizers'
step terms are added, and the sum goes through one backward.

Checkpoints (format in :mod:`nas_core.checkpoint`) hold the supernet, optimiser, scheduler,
data position, every RNG and every component's state, so ``--resume`` continues exactly as if
the run had not stopped. The step counts and learning rates come from the run's
:class:`~nas_core.schedule.Schedule`, the same object components see as ``context.schedule``.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nas_core import distributed
from nas_core.atomic_file import write_atomic
from nas_core.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_NAME, rng_state, save_atomic, set_rng_state
from nas_core.components.base import Batch, PathOutput, Regularizer, StepContext
from nas_core.config import TrainConfig
from nas_core.data.arrays import BatchIterator, Normalizer
from nas_core.errors import CheckpointError, ConfigError, NasError
from nas_core.restore import read_for_run, restore_supernet_and_components
from nas_core.run import Run
from nas_core.schedule import Schedule


def build_optimizer(cfg: TrainConfig, modules: list[torch.nn.Module]) -> torch.optim.Optimizer:
    """SGD or AdamW; BN and bias parameters get no weight decay when ``no_decay_bn_bias``."""
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for name, p in module.named_parameters():
            if id(p) in seen or not p.requires_grad:
                continue
            seen.add(id(p))
            (no_decay if cfg.optimizer.no_decay_bn_bias and p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = cfg.optimizer
    if opt.name == "adamw":
        return torch.optim.AdamW(groups, lr=opt.lr, weight_decay=opt.weight_decay)
    return torch.optim.SGD(groups, lr=opt.lr, momentum=opt.momentum, nesterov=opt.nesterov and opt.momentum > 0, weight_decay=opt.weight_decay)


def build_scheduler(schedule: Schedule, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: the base learning rate times :meth:`Schedule.factor` of the step.

    A plain function, not the bound method: ``LambdaLR`` saves nothing of a function in its
    state dict (checkpoints stay as they were)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule.factor(step))


def split_batch(batch: Batch, parts: int) -> list[Batch]:
    """``parts`` consecutive slices of a batch (views, labels and raw images sliced alike)."""
    if parts == 1:
        return [batch]
    if batch.size % parts:
        raise NasError(f"train.micro_batches {parts} does not divide the per-process batch of {batch.size}")
    per = batch.size // parts

    def cut(t, i):
        if t is None:
            return None
        if isinstance(t, list):
            return [v[i * per : (i + 1) * per] for v in t]
        return t[i * per : (i + 1) * per]

    return [Batch(cut(batch.inputs, i), cut(batch.labels, i), cut(batch.raw, i)) for i in range(parts)]


class Trainer:
    """Trains ``run.supernet`` with the run's components. ``fit(resume=...)`` is the entry point."""

    def __init__(self, run: Run):
        run.check()  # combinations that cannot work fail before the data is read
        self.run = run
        self.cfg = run.config.train
        data = run.data
        classes = getattr(run.space, "num_classes", None)
        if self.cfg.label_loss == "ce" and isinstance(classes, int) and classes < data.num_classes:
            raise ConfigError(
                f"{run.config.source}: space.num_classes: the space has {classes} classes, the data set '{run.config.data.name}' {data.num_classes}"
            )
        self.loader = BatchIterator(data.train, self.cfg.batch_size, seed=run.config.seed, augment=data.augment)
        self.schedule = run.context.schedule
        self.steps_per_epoch = self.schedule.steps_per_epoch
        self.total_steps = self.schedule.total_steps
        self.normalize = Normalizer(data.mean, data.std, run.device)
        self.supernet = run.supernet
        self.components = run.components()
        extra = [m for c in self.components.values() for m in c.trainable_modules()]
        self.optimizer = build_optimizer(self.cfg, [self.supernet, *extra])
        self.scheduler = build_scheduler(self.schedule, self.optimizer)
        self.step = 0
        self.checkpoint_path = run.run_dir / CHECKPOINT_NAME
        self.metrics_path = run.run_dir / "metrics.jsonl"
        self._tb = None

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "space": self.run.config.space.name,
            "space_options": self.run.config.space.options.model_dump(mode="json"),
            "step": self.step,
            "total_steps": self.total_steps,
            "supernet": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "loader": self.loader.state_dict(),
            "rng": rng_state(),
            "components": {slot: c.state_dict() for slot, c in self.components.items()},
            "component_modules": {
                slot: [m.state_dict() for m in c.trainable_modules()] for slot, c in self.components.items()
            },
            "plugins": {},
        }
        self.run.hooks.checkpoint_save(state)
        return state

    def save(self) -> Path | None:
        if not self.run.is_main:
            return None
        return save_atomic(self.state_dict(), self.checkpoint_path)

    def check_resumable(self, state: dict[str, Any], path: Path) -> None:
        """Refuse to continue a checkpoint under settings that contradict it (nothing has been
        written yet): other space options, a seed that reorders the data, another optimiser or
        other optimiser settings (loading would silently keep the checkpoint's), or a schedule
        that ends before the steps already run. A schedule extended past the
        checkpoint's plan continues with a warning (the learning-rate curve changes from here)."""
        config, source = self.run.config, self.run.config.source
        saved_space, space = state["space_options"], config.space.options.model_dump(mode="json")
        differ = [k for k in sorted(set(saved_space) | set(space)) if saved_space.get(k) != space.get(k)]
        if differ:
            shown = ", ".join(f"space.{k} {_show(saved_space.get(k))}" for k in differ)
            told = ", ".join(f"{_show(space.get(k))}" for k in differ)
            raise CheckpointError(f"{path}: was trained with {shown}; {source} says {told}: resume with the checkpoint's settings or use another run_dir")
        if state["loader"]["seed"] != config.seed:
            raise CheckpointError(f"{path}: was trained with seed {state['loader']['seed']}; {source} says {config.seed}: resume with the checkpoint's seed or use another run_dir")
        for index, (saved, group) in enumerate(zip(state["optimizer"]["param_groups"], self.optimizer.param_groups)):
            saved_kind, kind = ("adamw" if "betas" in g else "sgd" for g in (saved, group))
            if saved_kind != kind:
                raise CheckpointError(f"{path}: was trained with train.optimizer.name {saved_kind}; {source} gives {kind}: resume with the checkpoint's settings or use another run_dir")
            for key in _OPTIMIZER_SETTINGS:  # loading would silently put the checkpoint's values over the config's
                if key in saved and key in group and _plain(saved[key]) != _plain(group[key]):
                    name = "lr" if key == "initial_lr" else key
                    raise CheckpointError(
                        f"{path}: was trained with train.optimizer.{name} {_show(saved[key])} (parameter group {index}); {source} gives {_show(group[key])}: "
                        "resume with the checkpoint's settings or use another run_dir"
                    )
        step = state["step"]
        if step > self.total_steps:
            raise CheckpointError(
                f"{path}: has already run {step} steps; {source} plans {self.total_steps} (train.max_steps / train.epochs): "
                "raise them to continue, or use another run_dir"
            )
        if state["total_steps"] != self.total_steps and step < self.total_steps:
            warnings.warn(
                f"{path}: planned for {state['total_steps']} steps, continuing to {self.total_steps}: the learning-rate schedule changes from step {step} on",
                stacklevel=2,
            )

    def load(self, path: Path) -> None:
        state = read_for_run(self.run, path)
        self.check_resumable(state, path)
        restore_supernet_and_components(self.run, state, path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not fit this run ({str(exc).strip().splitlines()[0][:200]})") from None
        self.scheduler.load_state_dict(state["scheduler"])
        self.loader.load_state_dict(state["loader"])
        set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.run.hooks.checkpoint_load(state)

    # ------------------------------------------------------------------ logging

    def _log(self, record: dict[str, Any]) -> None:
        if not self.run.is_main:
            return
        with open(self.metrics_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self._tb.add_scalar(key, value, record["step"])

    def _truncate_metrics(self) -> None:
        """On resume, drop log lines past the checkpoint so the log matches an uninterrupted run
        (and a line a killed run left half-written)."""
        if not self.metrics_path.is_file():
            return
        keep = [line for line in self.metrics_path.read_text(errors="replace").splitlines() if _logged_step(line) <= self.step]
        kept = "".join(line + "\n" for line in keep).encode()
        write_atomic(self.metrics_path, lambda handle: handle.write(kept))

    def _open_tensorboard(self) -> None:
        if not (self.cfg.tensorboard and self.run.is_main):
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional at run time
            return
        self._tb = SummaryWriter(str(self.run.run_dir / "tensorboard"))

    # ------------------------------------------------------------------ training

    def _local_batch(self) -> Batch:
        """This rank's slice of the next global batch, normalised, labels only if used."""
        run = self.run
        images, labels = self.loader.next_batch()
        images = distributed.shard(images).to(run.device, non_blocking=True)
        use_labels = self.cfg.label_loss == "ce"
        labels = distributed.shard(labels).to(run.device) if use_labels else None
        batch = Batch(self.normalize(images), labels, raw=images)
        for regularizer in run.regularizers:
            batch = regularizer.prepare_batch(batch)
        run.hooks.batch_loaded(batch)
        return batch

    def train_step(self) -> dict[str, float]:
        """One optimiser step: the lifecycle hooks fire once per step, also when the step is
        computed in ``train.micro_batches`` slices (gradient accumulation)."""
        run, cfg = self.run, self.cfg
        slices = cfg.micro_batches
        if slices > 1 and run.teacher is not None:
            raise NasError("train.micro_batches > 1 cannot be combined with a teacher (it prepares targets per whole batch)")
        full_batch = self._local_batch()
        paths = run.sampler.sample(self.step)
        distributed.check_same(paths, f"the sampled paths of step {self.step}")
        self.supernet.train()
        self.optimizer.zero_grad(set_to_none=True)
        ctx = StepContext(
            run.context, self.step, self.schedule.epoch_of(self.step), full_batch, paths, self.supernet,
            lr=self.optimizer.param_groups[0]["lr"], _run=run,
        )
        run.hooks.before_train_step(ctx)
        if run.teacher is not None:
            run.teacher.prepare(ctx)
        coupling = [r for r in run.regularizers if getattr(r, "needs_step_loss", False)]
        losses, correct, seen, outputs = [], 0, 0, []
        for part, batch in enumerate(split_batch(full_batch, slices)):
            part_ctx = ctx if slices == 1 else dataclasses.replace(ctx, batch=batch, micro_batch=part)
            kept: list[tuple[PathOutput, torch.Tensor | None, torch.Tensor]] = []
            for index, path in enumerate(paths):
                features = self.supernet.forward_features(batch.student_input(index), path)
                output = PathOutput(features, self.supernet.classifier(features))
                loss = label_loss = None
                if batch.labels is not None:
                    loss = label_loss = F.cross_entropy(output.logits, batch.labels, label_smoothing=cfg.label_smoothing)
                    correct += int((output.logits.argmax(1) == batch.labels).sum())
                    seen += batch.size
                for regularizer in run.regularizers:
                    loss = regularizer.path_loss(part_ctx, index, output, loss)
                for extra in run.hooks.extra_loss(part_ctx, index, output):
                    loss = extra if loss is None else loss + extra
                if loss is None:
                    raise NasError("train.label_loss is 'none' and no regularizer or plugin provides a loss")
                self._check_finite(loss)
                if coupling:
                    kept.append((output, label_loss, loss))
                else:
                    (loss / slices).backward()
                losses.append(float(loss.detach()))
                outputs.append(PathOutput(output.features.detach(), output.logits.detach()))
            if coupling:
                self._backward_coupled(part_ctx, coupling, kept, slices)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        distributed.all_reduce_gradients(params)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if run.teacher is not None:
            run.teacher.update(ctx, outputs)
        metrics = {"loss": sum(losses) / len(losses), "lr": self.optimizer.param_groups[0]["lr"]}
        if seen:
            metrics["train_acc"] = 100.0 * correct / seen
        metrics.update(ctx.metrics)
        metrics = distributed.all_reduce_mean(metrics, run.device)
        metrics.update(run.hooks.after_train_step(ctx, metrics))
        self.step += 1
        return metrics

    def _check_finite(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise NasError(f"training diverged: loss is {loss.item()} at step {self.step} (lower train.optimizer.lr?)")

    def _backward_coupled(
        self, ctx: StepContext, coupling: list[Regularizer], kept: list[tuple[PathOutput, torch.Tensor | None, torch.Tensor]], slices: int
    ) -> None:
        """One backward of the paths' losses plus the step terms of the regularizers that
        couple the step's paths (``Regularizer.step_loss``)."""
        outputs = [output for output, _, _ in kept]
        label_losses = [label for _, label, _ in kept]
        total = kept[0][2]
        for _, _, loss in kept[1:]:
            total = total + loss
        for regularizer in coupling:
            term = regularizer.step_loss(ctx, outputs, label_losses)
            if term is not None:
                self._check_finite(term)
                total = total + term
        (total / slices).backward()

    def fit(self, resume: bool = False) -> dict[str, float]:
        run = self.run
        if resume:
            if not self.checkpoint_path.is_file():
                raise CheckpointError(f"{self.checkpoint_path}: no checkpoint to resume from")
            self.load(self.checkpoint_path)
            if self.step == self.total_steps:  # already trained: nothing to do, nothing rewritten
                return {}
            if run.is_main:
                self._truncate_metrics()
        elif self.checkpoint_path.exists():
            raise NasError(f"{self.checkpoint_path}: a checkpoint already exists; pass --resume to continue it or choose another run_dir")
        if run.is_main:
            run.run_dir.mkdir(parents=True, exist_ok=True)
            run.write_metadata("train")
        self._open_tensorboard()
        run.hooks.train_start()
        window: list[dict[str, float]] = []
        last: dict[str, float] = {}
        with Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
            disable=not (self.cfg.progress and run.is_main), transient=True,
        ) as progress:
            task = progress.add_task("train", total=self.total_steps, completed=self.step, info="")
            while self.step < self.total_steps:
                metrics = self.train_step()
                window.append(metrics)
                progress.update(task, completed=self.step, info=f"loss {metrics['loss']:.3f}")
                epoch_done = self.step % self.steps_per_epoch == 0
                if self.step % self.cfg.log_every_steps == 0 or epoch_done or self.step == self.total_steps:
                    last = {k: sum(m[k] for m in window) / len(window) for k in window[-1]}
                    last["lr"] = window[-1]["lr"]
                    self._log({"step": self.step, "epoch": self.step / self.steps_per_epoch, **last})
                    window = []
                if epoch_done:
                    epoch = self.step // self.steps_per_epoch - 1
                    extra = run.hooks.epoch_end(epoch, last)
                    if extra:
                        self._log({"step": self.step, "epoch": self.step / self.steps_per_epoch, **extra})
                every = self.cfg.checkpoint_every_steps
                if epoch_done or (every and self.step % every == 0):
                    self.save()
        self.save()
        if distributed.is_distributed():
            distributed.check_same(distributed.fingerprint(self.supernet), "the supernet weights after training")
        distributed.barrier()
        run.hooks.train_end()
        if self._tb is not None:
            self._tb.close()
        return last


_OPTIMIZER_SETTINGS = ("initial_lr", "momentum", "nesterov", "dampening", "weight_decay", "betas", "eps")
"""Optimiser hyperparameters a checkpoint carries per parameter group (from the config)."""


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _logged_step(line: str) -> float:
    """The step of a ``metrics.jsonl`` line; a line that is not a record sorts after every step."""
    try:
        record = json.loads(line)
        step = record.get("step", 0)
        return float(step) if isinstance(step, (int, float)) else float("inf")
    except (ValueError, AttributeError, RecursionError):
        return float("inf")


def _show(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
