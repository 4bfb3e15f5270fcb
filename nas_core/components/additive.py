"""Built-in evaluator ``layer-additive``: a member evaluator's scores, denoised by fitting one
effect per layer choice.

A supernet scores each network with its own error: a path's inherited weights and its BN
statistics are a little lucky or unlucky, and that luck does not carry over to the network's
neighbours. Ground-truth accuracy, on the other hand, is mostly a sum of what each layer's choice
contributes (on NAS-Bench-Macro a per-layer-additive model of the ground truth ranks networks at
Kendall tau 0.84, ``benchmarks/layer_effects.py``). This evaluator scores a seeded **fit sample**
of distinct networks with its member, fits that sum by ridge regression, and scores every network
with the fitted sum::

    evaluator:
      name: layer-additive
      member: {name: accuracy, bn_recal_batches: 4}
      fit_size: 256

The fit uses no ground truth: its targets are the member's own scores, so it is as label-free
as the member. What it is worth on the ranking study (every supernet's tau with and without the
fit, and the searches) is in README "The ranking study".

Features: for every searchable layer, one indicator per choice other than choice 0 (choice 0 is
the baseline), of the network's canonical form; plus an intercept, which is not penalised. The
fitted score is ``intercept + sum of the chosen effects``; the fit's in-sample R^2 is logged, so
a user sees when the member's scores are far from additive.

What it costs and gives: ``fit_size`` member evaluations once per supernet (every process under
torchrun draws and scores the same sample, without collectives), then nothing per network, so a
search can afford any budget. The fitted effects are kept in ``<run_dir>/layer-additive/`` under
a fingerprint of everything the fit depends on (the supernet's weights when the member reads
them, the member's and the fit's options, the run's seed, data and space), so ``nas search``
and then ``nas rank`` on the same trained supernet fit once; ``cache: false`` turns that off.
The score depends on the network and the supernet alone, as the evaluator contract asks. What
it cannot see: interactions between layers (two choices that only help together) -- the
member's own score keeps those, with its noise.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from pydantic import BaseModel, Field

from nas_core.checked_json import read_checked_json, write_json_atomic
from nas_core.components.base import Evaluator
from nas_core.config import ComponentConfig, Section
from nas_core.context import ComponentContext
from nas_core.errors import ConfigError, NasError
from nas_core.ranking import sample_up_to
from nas_core.spaces.supernet import Arch, Supernet

FIT_SALT = 29
"""Seed offset (from the run's seed) of the fit sample."""


class LayerAdditiveOptions(Section):
    member: ComponentConfig = Field(..., description="the evaluator whose scores are fitted: {name: ..., <its options>}")
    fit_size: int = Field(256, ge=2, description="distinct networks (seeded by the run's seed) the member scores to fit the effects on")
    ridge: float = Field(1.0, ge=0, description="L2 penalty on the per-choice effects (the intercept is not penalised)")
    cache: bool = Field(True, description="keep the fitted effects in <run_dir>/layer-additive/ and reuse them for the same supernet weights and settings")


class SavedEffects(BaseModel):
    """A cached fit on disk (``<run_dir>/layer-additive/<fingerprint>.json``)."""

    intercept: float
    effects: list[list[float]]
    fitted_on: int = Field(ge=2)
    r_squared: float


class LayerEffects:
    """A fitted additive model: an intercept and one effect per (layer, choice above 0)."""

    def __init__(self, intercept: float, effects: Sequence[Sequence[float]]):
        self.intercept = float(intercept)
        self.effects = [list(map(float, layer)) for layer in effects]
        """``effects[layer][choice]``, 0.0 for choice 0 (the baseline)."""

    @classmethod
    def fit(cls, num_choices: Sequence[int], archs: Sequence[Arch], scores: Sequence[float], ridge: float) -> "LayerEffects":
        """Ridge regression of ``scores`` on the choice indicators of ``archs``."""
        features = choice_indicators(num_choices, archs)
        design = np.hstack([np.ones((len(archs), 1)), features])
        penalty = ridge * np.eye(design.shape[1])
        penalty[0, 0] = 0.0
        coef = np.linalg.lstsq(design.T @ design + penalty, design.T @ np.asarray(scores, dtype=np.float64), rcond=None)[0]
        effects, at = [], 1
        for n in num_choices:
            effects.append([0.0, *coef[at : at + n - 1]])
            at += n - 1
        return cls(coef[0], effects)

    def score(self, arch: Arch) -> float:
        return self.intercept + sum(self.effects[layer][choice] for layer, choice in enumerate(arch))

    def r_squared(self, archs: Sequence[Arch], scores: Sequence[float]) -> float:
        """Share of the scores' variance the fitted sum explains (1: exactly additive)."""
        y = np.asarray(scores, dtype=np.float64)
        residual = y - np.array([self.score(a) for a in archs])
        spread = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - float(np.sum(residual**2)) / spread if spread > 0 else 1.0


def choice_indicators(num_choices: Sequence[int], archs: Sequence[Arch]) -> np.ndarray:
    """One column per (layer, choice above 0): 1.0 where the network takes that choice."""
    offsets = np.cumsum([0, *(n - 1 for n in num_choices)])
    out = np.zeros((len(archs), int(offsets[-1])), dtype=np.float64)
    for row, arch in enumerate(archs):
        for layer, choice in enumerate(arch):
            if choice > 0:
                out[row, offsets[layer] + choice - 1] = 1.0
    return out


class LayerAdditiveEvaluator(Evaluator):
    """The member's scores of a seeded fit sample, fitted as a sum of per-layer choice effects."""

    metric_name = "layer_additive"

    def __init__(self, context: ComponentContext, options: LayerAdditiveOptions):
        self.context = context
        self.options = options
        self.member: Evaluator = context.build("evaluator", options.member, where="evaluator.member")
        self.model: LayerEffects | None = None
        self._fit_archs: list[Arch] | None = None
        self._supernet: Supernet | None = None

    def fit_archs(self) -> list[Arch]:
        """The seeded fit sample (the whole space when it has fewer distinct networks)."""
        if self._fit_archs is None:
            self._fit_archs = sample_up_to(self.context.space, self.options.fit_size, self.context.seed + FIT_SALT)
        return self._fit_archs

    def fitted(self, supernet: Supernet) -> LayerEffects:
        """The model fitted to the member's scores with this supernet (fitted once per supernet,
        or read back from the run's cache of earlier fits)."""
        if self.model is None or supernet is not self._supernet:
            cache = self.cache_path(supernet) if self.options.cache else None
            self.model = self._read_cache(cache) if cache is not None else None
            if self.model is None:
                self.model = self._fit(supernet, cache)
            self._supernet = supernet
        return self.model

    def _fit(self, supernet: Supernet, cache: Path | None) -> LayerEffects:
        archs = self.fit_archs()
        self.context.logger.info("layer-additive: the member (%s) scores the fit sample of %d networks", self.member.metric_name, len(archs))
        scores = [float(s) for s in self.member.evaluate(supernet, archs)]
        kept = [(a, s) for a, s in zip(archs, scores, strict=True) if math.isfinite(s)]
        if len(kept) < 2:
            raise NasError(f"evaluator.member: {self.member.metric_name} gave a finite score to {len(kept)} of the {len(archs)} networks of the fit sample; the layer effects need at least 2")
        fit_archs, fit_scores = [a for a, _ in kept], [s for _, s in kept]
        model = LayerEffects.fit(self.context.space.num_choices, fit_archs, fit_scores, self.options.ridge)
        r_squared = model.r_squared(fit_archs, fit_scores)
        self.context.logger.info(
            "layer-additive: fitted on %d networks (%d without a finite score left out), R^2 = %.3f", len(kept), len(archs) - len(kept), r_squared
        )
        if cache is not None and self.context.is_main:
            saved = SavedEffects(intercept=model.intercept, effects=model.effects, fitted_on=len(kept), r_squared=r_squared)
            try:
                write_json_atomic(saved.model_dump(), cache)
            except OSError as exc:  # only a cache: the scores stand without it
                self.context.logger.warning("layer-additive: could not keep the fit in %s (%s)", cache, exc.strerror or exc)
        return model

    def cache_path(self, supernet: Supernet | None) -> Path:
        """Where the fit for this supernet and these settings is kept: named by a SHA-256 over
        the options, the run's seed, data and space, and (when the member reads the supernet)
        every tensor of the supernet's state."""
        digest = hashlib.sha256()
        config = self.context.config
        settings = {
            "evaluator": self.options.model_dump(mode="json"), "seed": self.context.seed,
            "data": config.data.model_dump(mode="json"), "space": config.space.model_dump(mode="json"),
        }
        digest.update(json.dumps(settings, sort_keys=True).encode())
        if self.member.reads_supernet and supernet is not None:
            for name, tensor in sorted(supernet.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return self.context.run_dir / "layer-additive" / f"{digest.hexdigest()[:24]}.json"

    def _read_cache(self, path: Path) -> LayerEffects | None:
        """The cached fit, or None when there is none or it does not fit this space (an
        unreadable file is refitted over, with a warning: it is only a cache)."""
        if not path.is_file():
            return None
        try:
            saved = read_checked_json(path, SavedEffects, "a layer-additive fit", NasError)
        except NasError as exc:
            self.context.logger.warning("layer-additive: %s; fitting again", exc)
            return None
        if [len(layer) for layer in saved.effects] != list(self.context.space.num_choices):
            self.context.logger.warning("layer-additive: %s: effects do not match the space's choices; fitting again", path)
            return None
        self.context.logger.info("layer-additive: the fit of %d networks (R^2 = %.3f) read from %s", saved.fitted_on, saved.r_squared, path)
        return LayerEffects(saved.intercept, saved.effects)

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        model = self.fitted(supernet)
        space = self.context.space
        return [model.score(space.canonical(a)) for a in archs]

    # ------------------------------------------------------------------ the member's needs

    @property
    def reads_supernet(self) -> bool:
        return self.member.reads_supernet

    def recalibration_batches(self) -> list[torch.Tensor]:
        return self.member.recalibration_batches()

    def requires(self) -> Mapping[str, Any]:
        return self.member.requires()

    def check(self, context: ComponentContext) -> None:
        try:
            self.member.check(context)
        except ConfigError:
            raise
        except NasError as exc:  # say which evaluator
            raise NasError(*(f"evaluator.member: {m}" for m in exc.messages)) from None

    def state_dict(self) -> dict[str, Any]:
        return {"member": self.member.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.member.load_state_dict(state.get("member", {}))
