"""CIFAR-10 from the JPEG tree tarball under ``NAS_DATA`` or from torchvision's own format.

The JPEG tree (``train/<class>/NNNN.jpg``, ``test/<class>/NNNN.jpg``) is decoded once into a
uint8 ``.npz`` cache (``$NAS_CACHE`` or ``~/.cache/nas-engine``) and reused. The files are
sorted by class, so the validation split is stratified and seeded, never "the last N images".
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pydantic import Field

from nas_core.config import Section, data_root
from nas_core.data.arrays import DataSplits, ImageArrays, seeded_subset, stratified_split
from nas_core.errors import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
TARBALL = "cifar10/cifar10_jpeg_tree.tar.gz"


class Cifar10Options(Section):
    root: str | None = Field(None, description="tarball, unpacked JPEG tree or torchvision folder; default $NAS_DATA/cifar10")
    val_size: int = Field(5000, ge=0, description="training images held out for search (stratified, seeded)")
    split_seed: int = 0
    train_subset: int | None = Field(None, gt=0, description="use only this many training images (stratified)")
    val_subset: int | None = Field(None, gt=0, description="use only this many validation images")
    augment: bool = True


def cache_dir() -> Path:
    path = Path(os.environ.get("NAS_CACHE", Path.home() / ".cache" / "nas-engine")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _decode(blob: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(blob)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except Exception as exc:
        raise DataError(f"{where}: not a readable image ({exc})") from None


def _collect(items, where: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """items: iterable of (relative path, bytes) -> {split: (images NHWC, labels)}."""
    buckets: dict[str, list[tuple[str, int, np.ndarray]]] = {"train": [], "test": []}
    for rel, blob in items:
        parts = Path(rel).parts
        parts = parts[parts.index("train") :] if "train" in parts else parts[parts.index("test") :] if "test" in parts else ()
        if len(parts) != 3 or parts[1] not in CLASSES:
            continue
        buckets[parts[0]].append((rel, CLASSES.index(parts[1]), _decode(blob(), f"{where}: {rel}")))
    out = {}
    for split, rows in buckets.items():
        if not rows:
            raise DataError(f"{where}: no {split}/<class>/*.jpg images found (expected the CIFAR-10 JPEG tree)")
        rows.sort(key=lambda r: r[0])
        out[split] = (np.stack([r[2] for r in rows]), np.array([r[1] for r in rows], dtype=np.int64))
    return out


def _read_tarball(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith((".jpg", ".jpeg", ".png"))]
            return _collect(((m.name, lambda m=m: tar.extractfile(m).read()) for m in members), str(path))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{path}: cannot read the CIFAR-10 tarball ({exc})") from None


def _read_tree(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return _collect(((str(p.relative_to(path)), p.read_bytes) for p in files), str(path))


def _read_torchvision(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from torchvision.datasets import CIFAR10

    out = {}
    for split, train in (("train", True), ("test", False)):
        try:
            ds = CIFAR10(str(path), train=train, download=False)
        except RuntimeError as exc:
            raise DataError(f"{path}: torchvision CIFAR-10 files unreadable ({exc})") from None
        out[split] = (np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64))
    return out


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]


def load_cifar10_arrays(root: str | Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': (images NHWC uint8, labels), 'test': ...}, decoded once and cached."""
    path = Path(root).expanduser() if root else data_root() / TARBALL
    if path.is_dir() and (path / TARBALL).is_file():
        path = path / TARBALL
    if path.is_dir() and (path / "cifar10_jpeg_tree.tar.gz").is_file():
        path = path / "cifar10_jpeg_tree.tar.gz"
    if not path.exists():
        raise DataError(f"{path}: CIFAR-10 not found (set NAS_DATA or data.root to the tarball, JPEG tree or torchvision folder)")
    cache = cache_dir() / f"cifar10-{_fingerprint(path)}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as npz:
                return {s: (npz[f"{s}_x"], npz[f"{s}_y"]) for s in ("train", "test")}
        except Exception:
            cache.unlink(missing_ok=True)  # a broken cache is rebuilt, never trusted
    if path.is_file():
        arrays = _read_tarball(path)
    elif (path / "cifar-10-batches-py").is_dir():
        arrays = _read_torchvision(path)
    else:
        arrays = _read_tree(path)
    tmp = cache.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, **{f"{s}_{k}": v for s, (x, y) in arrays.items() for k, v in (("x", x), ("y", y))})
    os.replace(tmp, cache)
    return arrays


def _to_arrays(images: np.ndarray, labels: np.ndarray) -> ImageArrays:
    return ImageArrays(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))), torch.from_numpy(labels))


def cifar10(root: str | None = None, val_size: int = 5000, split_seed: int = 0, train_subset: int | None = None,
            val_subset: int | None = None, augment: bool = True) -> DataSplits:
    """CIFAR-10 with a stratified, seeded validation split held out of the training set."""
    arrays = load_cifar10_arrays(root)
    train_all = _to_arrays(*arrays["train"])
    train_idx, val_idx = stratified_split(train_all.labels, val_size, split_seed)
    train, val = train_all.subset(train_idx), train_all.subset(val_idx)
    if train_subset:
        train = train.subset(seeded_subset(train.labels, train_subset, split_seed + 1))
    if val_subset:
        val = val.subset(seeded_subset(val.labels, val_subset, split_seed + 2))
    return DataSplits(train, val, _to_arrays(*arrays["test"]), 10, MEAN, STD, CLASSES, augment)
