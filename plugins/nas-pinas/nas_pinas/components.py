"""Pi-NAS training components: cross-path sampler, contrastive regularizer, mean teacher.

One step (the engine's trainer calls these in this order):

1. ``CrossPathInfoNCE.prepare_batch`` makes 4 MoCo-v2 views of the uint8 batch and drops labels.
2. ``CrossPathSampler.sample`` draws paths a and b that differ in EVERY layer.
3. ``MeanTeacher.prepare`` computes keys ``k0 = T(view2, a)``, ``k1 = T(view4, b)`` with the EMA
   teacher (no gradient) and puts them and the negative queue in ``ctx.extras``.
4. Per path i, ``CrossPathInfoNCE.path_loss`` projects the student's pooled features through the
   neck, ``q_i = normalise(neck(S(view_{2i+1}, path_i)))``, and returns
   ``CE([q_i . k_{1-i}, q_i . Q] / tau, 0)`` -- the positive is the OTHER path's key
   (cross-path learning); ``Q`` are the queued negatives (the non-trivial mean teacher).
5. After the optimiser step ``MeanTeacher.update`` moves the teacher towards the student on the
   modules path a uses (stem, chosen blocks, head, neck), then again on path b's, and enqueues
   ``(k0 + k1) / 2``.

Shuffled BN: the reference shuffles the key batch across GPUs so the teacher's BN statistics
come from other images than the student's. Under torchrun (an initialised process group with
world size > 1) the teacher does exactly that with all-gather + a broadcast permutation. In a
single process the substitute is *grouped shuffled BN*: the key batch is randomly permuted and
run through the teacher in ``bn_groups`` chunks, each normalised with its own batch statistics,
then un-permuted -- the keys' BN statistics come from random subsets the student never
normalised together, which removes the same intra-batch shortcut. ``bn_groups: 1`` is plain
train-mode BN over the whole key batch.
"""

from __future__ import annotations

import copy
import math
import random
import warnings
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from nas_core.api import (
    Arch,
    Batch,
    ComponentContext,
    ConfigError,
    NasError,
    PathOutput,
    Regularizer,
    Sampler,
    Section,
    StepContext,
    Supernet,
    Teacher,
    python_rng_state,
    set_python_rng_state,
)

KEYS = "pinas.keys"
QUEUE = "pinas.queue"
QUERIES = "pinas.queries"
METRICS = "pinas.metrics"


class CollapseWarning(UserWarning):
    """The normalised features are losing their spread: the supernet is collapsing."""


def feature_spread(z: torch.Tensor) -> float:
    """Std over the batch of L2-normalised features, averaged over dimensions, times sqrt(dim).

    About 1 for features spread evenly over the sphere, 0 when every image maps to one point.
    """
    z = F.normalize(z.detach().float(), dim=1)
    return float(z.std(0).mean() * math.sqrt(z.shape[1]))


# ------------------------------------------------------------------------------------ sampler


class CrossPathOptions(Section):
    pass


class CrossPathSampler(Sampler):
    """Two paths per step that differ in every layer (per layer: 2 choices without replacement)."""

    paths_per_step = 2

    def __init__(self, context: ComponentContext, options: CrossPathOptions):
        self.space = context.space
        if min(self.space.num_choices) < 2:
            raise ConfigError(f"sampler.name: cross-path needs at least 2 choices in every layer; space '{self.space.name}' has {self.space.num_choices}")
        self.rng = random.Random(context.seed * 7 + 3)

    def sample(self, step: int) -> list[Arch]:
        pairs = [self.rng.sample(range(n), 2) for n in self.space.num_choices]
        return [tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": python_rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_python_rng_state(state["rng"], self.rng)


# ------------------------------------------------------------------------------------ regularizer


class InfoNCEOptions(Section):
    temperature: float = Field(0.2, gt=0, description="tau of the InfoNCE logits")
    cross_path: bool = Field(True, description="positive = the other path's key (false: the same path's key; ablation)")
    negatives: bool = Field(True, description="use the queue of negatives (false: trivial mean teacher, -q.k/tau; ablation)")
    neck_hidden: int | None = Field(None, gt=0, description="hidden width of the MLP neck (default: the feature width)")
    neck_dim: int = Field(128, gt=0, description="output width of the neck (and of the queued keys)")
    views: int = Field(4, ge=2, description="augmented views per image (path i: student view 2i, teacher view 2i+1)")
    neck_bn: bool = Field(True, description="BN after the neck's hidden layer (not in the MoCo-v2 reference; keeps short runs from collapsing early)")


class CrossPathInfoNCE(Regularizer):
    """Multi-view batches, the projection neck and the symmetric cross-path InfoNCE loss."""

    def __init__(self, context: ComponentContext, options: InfoNCEOptions):
        self.context = context
        o = options
        self.temperature, self.cross_path, self.negatives = o.temperature, o.cross_path, o.negatives
        self.neck_hidden, self.neck_dim, self.views, self.neck_bn = o.neck_hidden, o.neck_dim, o.views, o.neck_bn
        self.neck: nn.Module | None = None
        self.generator = torch.Generator().manual_seed(context.seed * 31 + 5)
        section = context.section("pinas")
        self.guard = CollapseGuard(section.collapse_threshold if section else 0.2, section.collapse_warmup if section else 50,
                                   section.collapse_window if section else 10)
        self._norm: tuple[torch.Tensor, torch.Tensor] | None = None

    def requires(self) -> Mapping[str, Any]:
        # Pi-NAS reads no labels while training the supernet, and it cuts its MoCo-v2 views from
        # the raw images: the loader's pad-crop + flip would put black borders into every view
        return {"train.label_loss": "none", "data.augment": False}

    def check(self, context: ComponentContext) -> None:
        if not isinstance(context.peer("teacher"), MeanTeacher):
            teacher = context.config.teacher
            raise NasError(
                "regularizer 'cross-path-infonce' needs teacher 'mean-teacher' (its keys and negative queue); "
                f"the config's teacher is {repr(teacher.name) if teacher else 'none'}"
            )
        paths = getattr(context.peer("sampler"), "paths_per_step", None)
        if paths is not None and paths != 2:
            # the loss pairs path a with path b (each the other's positive) on views 0-3; with
            # more paths views repeat and the pairs become a cycle, with one the positive is itself
            raise NasError(
                f"regularizer 'cross-path-infonce' pairs the two paths of a step (a and b, each the other's positive), "
                f"but sampler '{context.config.sampler.name}' trains {paths} per step; use sampler: {{name: cross-path}}"
            )

    # -- construction
    def attach(self, supernet: Supernet) -> None:
        dim = feature_width(supernet)
        hidden = self.neck_hidden or dim
        norm: list[nn.Module] = [nn.BatchNorm1d(hidden)] if self.neck_bn else []
        self.neck = nn.Sequential(nn.Linear(dim, hidden), *norm, nn.ReLU(inplace=True), nn.Linear(hidden, self.neck_dim))

    def trainable_modules(self) -> list[nn.Module]:
        return [self.neck] if self.neck is not None else []

    # -- data
    def prepare_batch(self, batch: Batch) -> Batch:
        if batch.raw is None:
            raise NasError("Pi-NAS needs the uint8 images (Batch.raw) to make its augmented views")
        from nas_pinas.augment import moco_v2_view

        if self._norm is None:
            data, dev = self.context.data, batch.raw.device
            self._norm = (torch.tensor(data.mean, device=dev).view(1, -1, 1, 1), torch.tensor(data.std, device=dev).view(1, -1, 1, 1))
        mean, std = self._norm
        views = [moco_v2_view(batch.raw, self.generator, mean, std) for _ in range(self.views)]
        return Batch(views, labels=None, raw=batch.raw)  # labels are never passed on

    # -- loss
    def project(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.neck(features), dim=1)

    def path_loss(self, ctx: StepContext, index: int, output: PathOutput, loss: torch.Tensor | None) -> torch.Tensor | None:
        if KEYS not in ctx.extras:
            raise NasError("the cross-path-infonce regularizer needs the Pi-NAS teacher (teacher: {name: mean-teacher})")
        keys = ctx.extras[KEYS]
        q = self.project(output.features)
        k = keys[(index + 1) % len(keys)] if self.cross_path else keys[index]
        pos = (q * k).sum(1, keepdim=True)
        if self.negatives:
            neg = q @ ctx.extras[QUEUE].t()
            logits = torch.cat([pos, neg], 1) / self.temperature
            term = F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))
        else:
            term = -(pos.mean() / self.temperature)  # positive term only: nothing pushes keys apart
        ctx.extras.setdefault(QUERIES, {})[index] = q.detach()
        if index == len(ctx.paths) - 1:
            self._record(ctx)
        return term if loss is None else loss + term

    def _record(self, ctx: StepContext) -> None:
        queries = torch.cat(list(ctx.extras[QUERIES].values()))
        keys = torch.cat(list(ctx.extras[KEYS]))
        spread = feature_spread(queries)
        metrics = {"pinas/feat_std": spread, "pinas/key_std": feature_spread(keys)}
        metrics.update(self.guard.observe(ctx.step, spread))
        ctx.extras[METRICS] = metrics

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "guard": self.guard.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            self.generator.set_state(state["generator"].cpu() if hasattr(state["generator"], "cpu") else state["generator"])
        if "guard" in state:
            self.guard.load_state_dict(state["guard"])


def feature_width(supernet: Supernet) -> int:
    """Width of ``forward_features``: the classifier's input, else one probe forward."""
    for module in supernet.classifier.modules():
        if isinstance(module, nn.Linear):
            return module.in_features
    raise NasError("cannot infer the supernet's feature width (its classifier has no nn.Linear)")


class CollapseGuard:
    """Watches the spread of normalised features; warns when it falls toward collapse.

    The features count as collapsed while the mean spread over the last ``window`` steps is
    below ``threshold`` (healthy features are near 1, collapsed ones near 0), after ``warmup``
    steps. ``pinas/collapse`` logs that state step by step, so a dip the training recovers from
    shows as one; a warning is issued each time a collapse begins, and ``collapsed_at`` keeps the
    first step one began (``collapsed``: did one ever happen).
    """

    def __init__(self, threshold: float, warmup: int, window: int):
        self.threshold, self.warmup, self.window = threshold, warmup, window
        self.recent: list[float] = []
        self.collapsed_at: int = -1
        self.collapsing = False

    def observe(self, step: int, spread: float) -> dict[str, float]:
        self.recent = (self.recent + [spread])[-self.window :]
        mean = sum(self.recent) / len(self.recent)
        below = step >= self.warmup and mean < self.threshold
        if below and not self.collapsing:
            if self.collapsed_at < 0:
                self.collapsed_at = step
            warnings.warn(
                f"Pi-NAS: feature collapse at step {step}: spread of normalised features {mean:.3f} < {self.threshold} "
                "(healthy ~1). Are the negatives (queue) enabled and the teacher momentum high enough?",
                CollapseWarning, stacklevel=2,
            )
        self.collapsing = below
        return {"pinas/collapse": float(below)}

    @property
    def collapsed(self) -> bool:
        return self.collapsed_at >= 0

    def state_dict(self) -> dict[str, Any]:
        return {"recent": list(self.recent), "collapsed_at": self.collapsed_at, "collapsing": self.collapsing}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recent = [float(v) for v in state["recent"]]
        self.collapsed_at = int(state["collapsed_at"])
        self.collapsing = bool(state.get("collapsing", self.collapsed_at >= 0))


# ------------------------------------------------------------------------------------ teacher


class MeanTeacherOptions(Section):
    momentum: float = Field(0.999, ge=0, lt=1, description="EMA momentum of the teacher")
    queue_size: int = Field(4096, gt=0, description="negative keys kept (49,152 in the reference, ImageNet)")
    bn_groups: int = Field(2, ge=1, description="single-process shuffled-BN substitute: key batch split into this many shuffled groups")


class MeanTeacher(Teacher):
    """EMA copy of student supernet + neck, updated per path on its active modules, and the queue."""

    def __init__(self, context: ComponentContext, options: MeanTeacherOptions):
        self.context = context
        self.momentum, self.queue_size, self.bn_groups = options.momentum, options.queue_size, options.bn_groups
        self.supernet: Supernet | None = None
        self.neck: nn.Module | None = None
        self.queue: torch.Tensor | None = None
        self.ptr = 0
        self.generator = torch.Generator().manual_seed(context.seed * 37 + 11)
        self._pending: dict[str, Any] | None = None

    def check(self, context: ComponentContext) -> None:
        self._regularizer()

    # -- construction (lazy: the student exists only after the run built the supernet)
    def _regularizer(self) -> CrossPathInfoNCE:
        for regularizer in self.context.peers("regularizers"):
            if isinstance(regularizer, CrossPathInfoNCE):
                return regularizer
        names = ", ".join(repr(r.name) for r in self.context.config.regularizers) or "none"
        raise NasError(f"teacher 'mean-teacher' needs regularizer 'cross-path-infonce' (it owns the neck); the config's regularizers are {names}")

    def _ensure(self) -> None:
        if self.supernet is not None:
            return
        student, reg = self.context.supernet, self._regularizer()
        self.supernet = copy.deepcopy(student)
        self.neck = copy.deepcopy(reg.neck)
        for p in [*self.supernet.parameters(), *self.neck.parameters()]:
            p.requires_grad_(False)
        init = torch.randn(self.queue_size, reg.neck_dim, generator=self.generator)
        self.queue = F.normalize(init, dim=1).to(self.context.device)
        if self._pending is not None:
            self._apply(self._pending)
            self._pending = None

    # -- forward
    def _keys(self, images: torch.Tensor, path: Arch) -> torch.Tensor:
        def encode(x: torch.Tensor) -> torch.Tensor:
            return F.normalize(self.neck(self.supernet.forward_features(x, path)), dim=1)

        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            return _shuffled_bn_ddp(encode, images)
        n = len(images)
        perm = torch.randperm(n, generator=self.generator).to(images.device)
        groups = max(1, min(self.bn_groups, n // 2))  # BN needs at least 2 images per group
        chunks = [encode(part) for part in images[perm].chunk(groups)]
        keys = torch.empty(n, chunks[0].shape[1], device=images.device)
        keys[perm] = torch.cat(chunks)
        return keys

    @torch.no_grad()
    def prepare(self, ctx: StepContext) -> None:
        self._ensure()
        self.supernet.train()
        self.neck.train()
        ctx.extras[KEYS] = [self._keys(ctx.batch.teacher_input(i), path) for i, path in enumerate(ctx.paths)]
        ctx.extras[QUEUE] = self.queue.clone()

    # -- update
    @torch.no_grad()
    def update(self, ctx: StepContext, outputs: Sequence[PathOutput]) -> None:
        self._ensure()
        student, neck = ctx.supernet, self._regularizer().neck
        m = self.momentum
        for path in ctx.paths:
            pairs = list(zip(path_parameters(student, path), path_parameters(self.supernet, path)))
            pairs += list(zip(neck.parameters(), self.neck.parameters()))
            for s, t in pairs:
                t.mul_(m).add_(s.detach(), alpha=1 - m)
        keys = ctx.extras[KEYS]
        self.enqueue(sum(keys) / len(keys))

    def enqueue(self, keys: torch.Tensor) -> None:
        n = len(keys)
        index = (torch.arange(n, device=keys.device) + self.ptr) % self.queue_size
        self.queue[index] = keys[: self.queue_size] if n <= self.queue_size else keys[-self.queue_size :]
        self.ptr = (self.ptr + n) % self.queue_size

    # -- state
    def state_dict(self) -> dict[str, Any]:
        if self.supernet is None:
            return dict(self._pending or {})
        return {
            "supernet": self.supernet.state_dict(),
            "neck": self.neck.state_dict(),
            "queue": self.queue,
            "ptr": self.ptr,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if self.supernet is None:
            self._pending = state
            try:
                self._ensure()
            except NasError:
                pass
            return
        self._apply(state)

    def _apply(self, state: dict[str, Any]) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.neck.load_state_dict(state["neck"])
        self.queue = state["queue"].to(self.context.device).clone()
        self.ptr = int(state["ptr"])
        self.generator.set_state(state["generator"].cpu())


def path_parameters(supernet: Supernet, path: Arch) -> list[nn.Parameter]:
    """Parameters of the modules a path uses, de-duplicated, in a fixed order."""
    seen: dict[int, nn.Parameter] = {}
    for module in supernet.path_modules(path):
        for p in module.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())


def _shuffled_bn_ddp(encode, images: torch.Tensor) -> torch.Tensor:
    """MoCo's shuffled BN across processes: gather, shuffle globally, encode the local slice,
    gather the keys back, undo the shuffle, keep this rank's rows."""
    import torch.distributed as dist

    world, rank = dist.get_world_size(), dist.get_rank()
    gathered = [torch.empty_like(images) for _ in range(world)]
    dist.all_gather(gathered, images.contiguous())
    everything = torch.cat(gathered)
    perm = torch.randperm(len(everything), device=images.device)
    dist.broadcast(perm, src=0)
    n = len(images)
    local = encode(everything[perm][rank * n : (rank + 1) * n])
    keys = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(keys, local.contiguous())
    shuffled = torch.cat(keys)
    restored = torch.empty_like(shuffled)
    restored[perm] = shuffled
    return restored[rank * n : (rank + 1) * n]
