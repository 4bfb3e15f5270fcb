"""Evaluators for a supernet trained without labels; usable by every searcher and by ``nas rank``.

Both recalibrate each path's BN statistics first (the engine's cumulative-average
recalibration) and read the backbone's pooled features (the neck is a training device only).

- ``knn``: weighted k-nearest-neighbour top-1 (%) on L2-normalised features: a bank of labelled
  training images, queries from the validation split, votes ``exp(cos / temperature)`` of the
  ``k`` nearest bank images. Label-light: labels are read only for the bank.
- ``linear-probe``: the Pi-NAS protocol. Once per trained supernet, a linear head is trained on
  the frozen supernet's L2-normalised features with labels, one random path per step (BN
  statistics keep updating as in the reference; they are restored afterwards); then every path
  is scored by the top-1 (%) of that shared head after its own BN recalibration.
"""

from __future__ import annotations

import random
from typing import Sequence

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from nas_core.api import (
    Arch,
    ComponentContext,
    Evaluator,
    EvaluationData,
    Section,
    Supernet,
    evaluation_data,
    preserved_bn_state,
    score_after_recalibration,
    seeded_subset,
)
from nas_pinas.components import feature_width


class _Data:
    """The engine's evaluation data (recalibration batches, validation images) plus a
    stratified subset of labelled training images (the kNN bank / the probe's training set)."""

    def __init__(self, context: ComponentContext, bn_recal_batches: int, batch_size: int, train_images: int, max_images: int | None, split: str, salt: int):
        shared: EvaluationData = evaluation_data(context, split=split, bn_recal_batches=bn_recal_batches, batch_size=batch_size, max_images=max_images)
        train = context.data.train
        pick = torch.as_tensor(seeded_subset(train.labels, train_images, context.seed + salt), dtype=torch.long)
        self.recal = shared.recalibration
        self.train_x = shared.normalize(train.images[pick].to(context.device))
        self.train_y = train.labels[pick].to(context.device)
        self.val_x = shared.images
        self.val_y = shared.labels
        self.num_classes = context.data.num_classes


@torch.no_grad()
def path_features(supernet: Supernet, arch: Arch, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([F.normalize(supernet.forward_features(images[i : i + batch_size], arch), dim=1)
                      for i in range(0, len(images), batch_size)])


def knn_top1(bank: torch.Tensor, bank_y: torch.Tensor, queries: torch.Tensor, query_y: torch.Tensor, k: int, temperature: float, num_classes: int) -> float:
    """Weighted kNN accuracy (%): cosine similarities, top-k neighbours, votes exp(sim / T)."""
    sims = queries @ bank.t()
    k = min(k, len(bank))
    top, index = sims.topk(k, dim=1)
    votes = torch.zeros(len(queries), num_classes, device=queries.device)
    votes.scatter_add_(1, bank_y[index], (top / temperature).exp())
    return 100.0 * float((votes.argmax(1) == query_y).float().mean())


class KnnOptions(Section):
    k: int = Field(20, gt=0)
    temperature: float = Field(0.07, gt=0)
    bank_images: int = Field(2000, gt=0, description="labelled training images in the feature bank (stratified)")
    bn_recal_batches: int = Field(4, ge=0)
    batch_size: int = Field(250, gt=0)
    max_images: int | None = Field(None, gt=0, description="validation images to classify (stratified subset)")
    split: str = Field("val", pattern="^(val|test)$")


class KnnEvaluator(Evaluator):
    """kNN top-1 (%) on normalised pooled features after BN recalibration."""

    metric_name = "knn_acc"

    def __init__(self, context: ComponentContext, options: KnnOptions):
        self.context, self.options = context, options
        self._cache: _Data | None = None

    def data(self) -> _Data:
        if self._cache is None:
            o = self.options
            self._cache = _Data(self.context, o.bn_recal_batches, o.batch_size, o.bank_images, o.max_images, o.split, salt=17)
        return self._cache

    def recalibration_batches(self) -> list[torch.Tensor]:
        """What ``nas export`` recalibrates BN with: the same batches as scoring."""
        return self.data().recal

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        d, o = self.data(), self.options

        def score(arch: Arch) -> float:
            bank = path_features(supernet, arch, d.train_x, o.batch_size)
            queries = path_features(supernet, arch, d.val_x, o.batch_size)
            return knn_top1(bank, d.train_y, queries, d.val_y, o.k, o.temperature, d.num_classes)

        return score_after_recalibration(supernet, archs, d.recal, score, through="features")


class LinearProbeOptions(Section):
    steps: int = Field(300, gt=0, description="optimiser steps of the shared linear head (one random path each)")
    lr: float = Field(0.05, gt=0, description="Adam learning rate of the head")
    train_batch_size: int = Field(128, gt=0)
    train_images: int = Field(5000, gt=0, description="labelled training images the head sees (stratified)")
    bn_recal_batches: int = Field(4, ge=0)
    batch_size: int = Field(250, gt=0)
    max_images: int | None = Field(None, gt=0)
    split: str = Field("val", pattern="^(val|test)$")


class LinearProbeEvaluator(Evaluator):
    """Top-1 (%) of one linear head trained on the frozen supernet (random path per step),
    evaluated per path after BN recalibration."""

    metric_name = "probe_acc"

    def __init__(self, context: ComponentContext, options: LinearProbeOptions):
        self.context, self.options = context, options
        self._cache: _Data | None = None
        self.head: nn.Module | None = None
        self._fingerprint: tuple | None = None

    def data(self) -> _Data:
        if self._cache is None:
            o = self.options
            self._cache = _Data(self.context, o.bn_recal_batches, o.batch_size, o.train_images, o.max_images, o.split, salt=19)
        return self._cache

    def recalibration_batches(self) -> list[torch.Tensor]:
        """What ``nas export`` recalibrates BN with: the same batches as scoring."""
        return self.data().recal

    @staticmethod
    def _fingerprint_of(supernet: Supernet) -> tuple:
        params = list(supernet.parameters())
        return (id(supernet), float(params[0].detach().double().sum()), float(params[-1].detach().double().sum()))

    def train_head(self, supernet: Supernet) -> nn.Module:
        """Fit the shared linear head (cached until the supernet's weights change)."""
        fingerprint = self._fingerprint_of(supernet)
        if self.head is not None and fingerprint == self._fingerprint:
            return self.head
        d, o, space = self.data(), self.options, self.context.space
        seed = self.context.seed
        rng = random.Random(seed * 41 + 7)
        generator = torch.Generator().manual_seed(seed * 43 + 1)
        torch.manual_seed(seed)
        head = nn.Linear(feature_width(supernet), d.num_classes).to(self.context.device)
        optimizer = torch.optim.Adam(head.parameters(), lr=o.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, o.steps)
        with preserved_bn_state(supernet):
            supernet.train()  # BN statistics keep updating while the head trains (restored after)
            for _ in range(o.steps):
                index = torch.randint(0, len(d.train_x), (o.train_batch_size,), generator=generator).to(d.train_x.device)
                with torch.no_grad():
                    feats = F.normalize(supernet.forward_features(d.train_x[index], space.sample(rng)), dim=1)
                loss = F.cross_entropy(head(feats * 10.0), d.train_y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
        self.head, self._fingerprint = head.eval(), fingerprint
        return head

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        head, d = self.train_head(supernet), self.data()

        @torch.no_grad()
        def score(arch: Arch) -> float:
            feats = path_features(supernet, arch, d.val_x, self.options.batch_size)
            return 100.0 * float((head(feats * 10.0).argmax(1) == d.val_y).float().mean())

        return score_after_recalibration(supernet, archs, d.recal, score, through="features")
