"""A generic image-folder data set: ``root/train/<class>/*`` (+ optional ``root/test/<class>/*``).

Images are decoded once, resized to ``image_size`` and cached like CIFAR-10; the validation
split is stratified and seeded out of ``train``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pydantic import Field

from nas_core.config import Section
from nas_core.data.arrays import DataSplits, ImageArrays, stratified_split
from nas_core.data.cifar10 import cache_dir
from nas_core.errors import DataError

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class ImageFolderOptions(Section):
    root: str = Field(description="folder with train/<class>/ images (and optionally test/<class>/)")
    image_size: int = Field(32, gt=0)
    val_size: int = Field(0, ge=0)
    split_seed: int = 0
    augment: bool = True


def _read_split(folder: Path, classes: list[str], size: int) -> ImageArrays:
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()) if (folder / name).is_dir() else []:
            if path.suffix.lower() not in SUFFIXES:
                continue
            try:
                with Image.open(path) as image:
                    images.append(np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8))
            except Exception as exc:
                raise DataError(f"{path}: not a readable image ({exc})") from None
            labels.append(label)
    if not images:
        raise DataError(f"{folder}: no images found in <class>/ subfolders")
    x = torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy())
    return ImageArrays(x, torch.tensor(labels, dtype=torch.long))


def _cached(cache: Path) -> dict | None:
    """The decoded splits from the cache; None (and the file removed) when it is broken."""
    try:
        splits = torch.load(cache, weights_only=True)
        ok = isinstance(splits, dict) and "train" in splits and all(
            isinstance(v, dict) and isinstance(v.get("images"), torch.Tensor) and isinstance(v.get("labels"), torch.Tensor) for v in splits.values()
        )
    except Exception:  # a broken cache is rebuilt, never trusted
        ok = False
    if not ok:
        cache.unlink(missing_ok=True)
        return None
    return splits


def image_folder(root: str, image_size: int = 32, val_size: int = 0, split_seed: int = 0, augment: bool = True) -> DataSplits:
    """Decode (once, cached) and split an image-folder tree."""
    base = Path(root).expanduser()
    if not (base / "train").is_dir():
        raise DataError(f"{base}: expected a train/<class>/ folder of images")
    classes = sorted(p.name for p in (base / "train").iterdir() if p.is_dir())
    key = hashlib.sha1(f"{base.resolve()}:{image_size}:{os.stat(base / 'train').st_mtime}".encode()).hexdigest()[:12]
    cache = cache_dir() / f"imagefolder-{key}.pt"
    splits = _cached(cache) if cache.is_file() else None
    if splits is None:
        splits = {"train": _read_split(base / "train", classes, image_size)}
        if (base / "test").is_dir():
            splits["test"] = _read_split(base / "test", classes, image_size)
        splits = {k: {"images": v.images, "labels": v.labels} for k, v in splits.items()}
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        torch.save(splits, tmp)
        os.replace(tmp, cache)
    train = ImageArrays(splits["train"]["images"], splits["train"]["labels"])
    test = ImageArrays(splits["test"]["images"], splits["test"]["labels"]) if "test" in splits else None
    train_idx, val_idx = stratified_split(train.labels, val_size, split_seed)
    pixels = train.images.float().div(255)
    mean = tuple(pixels.mean((0, 2, 3)).tolist())
    std = tuple(pixels.std((0, 2, 3)).clamp_min(1e-3).tolist())
    return DataSplits(train.subset(train_idx), train.subset(val_idx), test, len(classes), mean, std, tuple(classes), augment)
