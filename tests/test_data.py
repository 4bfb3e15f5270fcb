"""CIFAR-10 loading (JPEG tree tarball, unpacked tree, torchvision format), splits, image folders."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import CIFAR10

from nas_core.data.arrays import BatchIterator, ImageArrays, random_crop_flip, stratified_split
from nas_core.data.cifar10 import cifar10, load_cifar10_arrays
from nas_core.data.image_folder import image_folder
from nas_core.errors import DataError


@pytest.fixture(scope="module")
def cifar(shared_data):
    return cifar10()


def test_real_cifar10_sizes_and_stratified_split(cifar):
    assert (len(cifar.train), len(cifar.val), len(cifar.test)) == (45000, 5000, 10000)
    assert cifar.val.labels.bincount().tolist() == [500] * 10
    assert cifar.train.labels.bincount().tolist() == [4500] * 10
    mean = cifar.train.images.float().mean((0, 2, 3)) / 255
    print(f"[margin] channel means vs published: observed {float((mean - torch.tensor([0.4913, 0.4821, 0.4465])).abs().max()):.3g}, bound 0.002")
    assert torch.allclose(mean, torch.tensor([0.4913, 0.4821, 0.4465]), atol=2e-3)


def test_split_is_seeded_and_disjoint():
    labels = torch.arange(1000) // 100  # sorted by class, like the JPEG tree
    train_a, val_a = stratified_split(labels, 100, seed=1)
    train_b, val_b = stratified_split(labels, 100, seed=1)
    assert np.array_equal(val_a, val_b) and not set(train_a) & set(val_a)
    assert np.bincount(labels[val_a].numpy()).tolist() == [10] * 10
    assert not np.array_equal(val_a, stratified_split(labels, 100, seed=2)[1])


def test_unpacked_tree_and_torchvision_format_match_tarball(cifar, tmp_path, monkeypatch):
    # a small real tree: the first 3 images of every class
    arrays = load_cifar10_arrays()
    for split in ("train", "test"):
        x, y = arrays[split]
        for c in range(10):
            folder = tmp_path / "tree" / split / ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"][c]
            folder.mkdir(parents=True)
            for i, index in enumerate(np.flatnonzero(y == c)[:3]):
                Image.fromarray(x[index]).save(folder / f"{i:04d}.png")
    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    tree = load_cifar10_arrays(tmp_path / "tree")
    assert tree["train"][0].shape == (30, 32, 32, 3) and sorted(set(tree["train"][1].tolist())) == list(range(10))
    # torchvision's pickled batches, written from the same images
    tv = tmp_path / "tv" / "cifar-10-batches-py"
    tv.mkdir(parents=True)
    for name, (x, y) in (("data_batch_1", tree["train"]), ("test_batch", tree["test"])):
        with open(tv / name, "wb") as handle:
            pickle.dump({"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1), "labels": y.tolist()}, handle)
    for name in ("data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"):
        with open(tv / name, "wb") as handle:
            pickle.dump({"data": np.zeros((0, 3072), np.uint8), "labels": []}, handle)
    with open(tv / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": []}, handle)
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)  # our files are not the official ones
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    via_tv = load_cifar10_arrays(tmp_path / "tv")
    assert np.array_equal(via_tv["train"][0], tree["train"][0]) and np.array_equal(via_tv["test"][1], tree["test"][1])


def test_missing_and_corrupt_data_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="CIFAR-10 not found"):
        cifar10(root=str(tmp_path / "nowhere"))
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="cannot read the CIFAR-10 tarball"):
        cifar10(root=str(bad))


def test_batch_iterator_resumes_exactly():
    data = ImageArrays(torch.randint(0, 255, (100, 3, 8, 8), dtype=torch.uint8), torch.arange(100) % 10)
    a = BatchIterator(data, 16, seed=3)
    for _ in range(9):  # crosses an epoch boundary (6 batches per epoch)
        a.next_batch()
    b = BatchIterator(data, 16, seed=99)
    b.load_state_dict(a.state_dict())
    for _ in range(5):
        (xa, ya), (xb, yb) = a.next_batch(), b.next_batch()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_random_crop_flip_moves_pixels_but_keeps_content():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float).view(2, 3, 8, 8)
    out = random_crop_flip(images, torch.Generator().manual_seed(0), padding=2)
    assert out.shape == images.shape and not torch.equal(out, images)
    centre = out[:, :, 2:6, 2:6]
    assert set(centre.flatten().tolist()) <= set(images.flatten().tolist())


def test_image_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("test", 2)):
        for name in ("cats", "dogs"):
            folder = tmp_path / "imgs" / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    splits = image_folder(str(tmp_path / "imgs"), image_size=16, val_size=4)
    assert splits.classes == ("cats", "dogs") and splits.num_classes == 2
    assert (len(splits.train), len(splits.val), len(splits.test)) == (8, 4, 4)
    assert splits.train.images.shape[1:] == (3, 16, 16)
    with pytest.raises(DataError, match="expected a train/<class>/ folder"):
        image_folder(str(tmp_path / "missing"))
