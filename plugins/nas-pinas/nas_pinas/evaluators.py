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
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from nas_core.components.base import Evaluator
from nas_core.components.evaluators import preserved_bn_state, recalibrate_bn
from nas_core.config import Section
from nas_core.data.arrays import Normalizer, seeded_subset
from nas_core.errors import DataError
from nas_core.spaces.supernet import Arch, Supernet
from nas_pinas.components import feature_width


class _Data:
    """Recalibration batches, labelled training images and validation images, normalised once."""

    def __init__(self, run: Any, bn_recal_batches: int, batch_size: int, train_images: int, max_images: int | None, split: str, salt: int):
        normalize = Normalizer(run.data.mean, run.data.std, run.device)
        val = run.data.test if split == "test" else run.data.val
        if val is None or len(val) == 0:
            raise DataError(f"evaluator: the data set has no '{split}' split to evaluate on")
        if max_images:
            val = val.subset(seeded_subset(val.labels, max_images, run.config.seed + 11))
        train = run.data.train
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(run.config.seed + 13))
        self.recal = [normalize(train.images[order[i * batch_size : (i + 1) * batch_size]].to(run.device))
                      for i in range(min(bn_recal_batches, len(order) // batch_size))]
        pick = torch.as_tensor(seeded_subset(train.labels, train_images, run.config.seed + salt), dtype=torch.long)
        self.train_x = normalize(train.images[pick].to(run.device))
        self.train_y = train.labels[pick].to(run.device)
        self.val_x = normalize(val.images.to(run.device))
        self.val_y = val.labels.to(run.device)
        self.num_classes = run.data.num_classes


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

    def __init__(self, run: Any, k: int = 20, temperature: float = 0.07, bank_images: int = 2000, bn_recal_batches: int = 4,
                 batch_size: int = 250, max_images: int | None = None, split: str = "val"):
        self.run, self.k, self.temperature, self.bank_images = run, k, temperature, bank_images
        self.bn_recal_batches, self.batch_size, self.max_images, self.split = bn_recal_batches, batch_size, max_images, split
        self._cache: _Data | None = None

    def data(self) -> _Data:
        if self._cache is None:
            self._cache = _Data(self.run, self.bn_recal_batches, self.batch_size, self.bank_images, self.max_images, self.split, salt=17)
        return self._cache

    def recalibration_batches(self) -> list[torch.Tensor]:
        """What ``nas export`` recalibrates BN with: the same batches as scoring."""
        return self.data().recal

    def evaluate(self, supernet: Supernet, archs: Sequence[Arch]) -> list[float]:
        d = self.data()
        scores = []
        with preserved_bn_state(supernet):
            for arch in archs:
                if d.recal:
                    recalibrate_bn(lambda x, arch=arch: supernet.forward_features(x, arch), supernet, d.recal)
                supernet.eval()
                bank = path_features(supernet, arch, d.train_x, self.batch_size)
                queries = path_features(supernet, arch, d.val_x, self.batch_size)
                scores.append(knn_top1(bank, d.train_y, queries, d.val_y, self.k, self.temperature, d.num_classes))
        return scores


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

    def __init__(self, run: Any, steps: int = 300, lr: float = 0.05, train_batch_size: int = 128, train_images: int = 5000,
                 bn_recal_batches: int = 4, batch_size: int = 250, max_images: int | None = None, split: str = "val"):
        self.run, self.steps, self.lr, self.train_batch_size, self.train_images = run, steps, lr, train_batch_size, train_images
        self.bn_recal_batches, self.batch_size, self.max_images, self.split = bn_recal_batches, batch_size, max_images, split
        self._cache: _Data | None = None
        self.head: nn.Module | None = None
        self._fingerprint: tuple | None = None

    def data(self) -> _Data:
        if self._cache is None:
            self._cache = _Data(self.run, self.bn_recal_batches, self.batch_size, self.train_images, self.max_images, self.split, salt=19)
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
        d, space = self.data(), self.run.space
        seed = self.run.config.seed
        rng = random.Random(seed * 41 + 7)
        generator = torch.Generator().manual_seed(seed * 43 + 1)
        torch.manual_seed(seed)
        head = nn.Linear(feature_width(supernet), d.num_classes).to(self.run.device)
        optimizer = torch.optim.Adam(head.parameters(), lr=self.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.steps)
        with preserved_bn_state(supernet):
            supernet.train()  # BN statistics keep updating while the head trains (restored after)
            for _ in range(self.steps):
                index = torch.randint(0, len(d.train_x), (self.train_batch_size,), generator=generator).to(d.train_x.device)
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
        scores = []
        with preserved_bn_state(supernet), torch.no_grad():
            for arch in archs:
                if d.recal:
                    recalibrate_bn(lambda x, arch=arch: supernet.forward_features(x, arch), supernet, d.recal)
                supernet.eval()
                feats = path_features(supernet, arch, d.val_x, self.batch_size)
                scores.append(100.0 * float((head(feats * 10.0).argmax(1) == d.val_y).float().mean()))
        return scores
