"""In-memory image arrays, train/validation splits and a resumable batch iterator.

Images are kept as uint8 NCHW tensors; augmentation (random crop with padding, horizontal flip)
and normalisation run on whole batches on the run's device, which keeps small-image training
fast on CPU and makes the data order a pure function of (seed, epoch) -- so a resumed run sees
exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from nas_core.errors import DataError


@dataclass
class ImageArrays:
    """uint8 images (N, C, H, W) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: np.ndarray | torch.Tensor) -> "ImageArrays":
        index = torch.as_tensor(indices, dtype=torch.long)
        return ImageArrays(self.images[index], self.labels[index])


@dataclass
class DataSplits:
    """What a data set factory returns. ``val`` is held out of ``train`` for search; ``test`` is
    only for final reporting."""

    train: ImageArrays
    val: ImageArrays
    test: ImageArrays | None
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...] = ()
    augment: bool = True


def stratified_split(labels: torch.Tensor, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split with the same class proportions in both parts (data sorted by class is safe)."""
    labels_np = labels.numpy()
    if not 0 <= val_size < len(labels_np):
        raise DataError(f"val_size {val_size} must be between 0 and the {len(labels_np)} training images")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels_np)
    val: list[np.ndarray] = []
    for c in classes:
        idx = np.flatnonzero(labels_np == c)
        rng.shuffle(idx)
        take = int(round(val_size * len(idx) / len(labels_np)))
        val.append(idx[:take])
    val_idx = np.sort(np.concatenate(val)) if val else np.array([], dtype=np.int64)
    mask = np.ones(len(labels_np), dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask), val_idx


def seeded_subset(labels: torch.Tensor, size: int, seed: int) -> np.ndarray:
    """A stratified random subset of ``size`` indices (for quick proxy runs)."""
    if size >= len(labels):
        return np.arange(len(labels))
    rest, chosen = stratified_split(labels, size, seed)
    return chosen


class Normalizer:
    """uint8 batch -> float batch with per-channel mean/std, optional crop+flip augmentation."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device):
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float().div_(255) - self.mean) / self.std


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Per-image random crop after zero padding and random horizontal flip (batched)."""
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).to(images.device)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w))
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols).to(images.device)
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    out = padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)]
    return out.permute(0, 3, 1, 2).contiguous()


class BatchIterator:
    """Shuffled mini-batches of an :class:`ImageArrays`, resumable at any step.

    The permutation of epoch ``e`` is drawn from ``seed + e``; ``position`` counts batches into
    the epoch. ``state_dict()`` / ``load_state_dict()`` make the data order survive a restart.
    """

    def __init__(self, data: ImageArrays, batch_size: int, seed: int, drop_last: bool = True, augment: bool = True):
        if batch_size > len(data):
            raise DataError(f"batch size {batch_size} is larger than the {len(data)} training images")
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.augment = augment
        self.epoch = 0
        self.position = 0

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self.seed = int(state["epoch"]), int(state["position"]), int(state["seed"])

    def _generator(self, salt: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 7919 + salt)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (uint8 images, labels); rolls over to the next epoch when one ends."""
        if self.position >= len(self):
            self.epoch += 1
            self.position = 0
        if getattr(self, "_order_epoch", None) != (self.seed, self.epoch):
            self._order = torch.randperm(len(self.data), generator=self._generator(0))
            self._order_epoch = (self.seed, self.epoch)
        order = self._order
        index = order[self.position * self.batch_size : (self.position + 1) * self.batch_size]
        images = self.data.images[index]
        if self.augment:
            images = random_crop_flip(images, self._generator(1 + self.position))
        self.position += 1
        return images, self.data.labels[index]


def iterate_batches(data: ImageArrays, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Sequential batches without augmentation (evaluation, BN recalibration)."""
    for start in range(0, len(data), batch_size):
        yield data.images[start : start + batch_size], data.labels[start : start + batch_size]
