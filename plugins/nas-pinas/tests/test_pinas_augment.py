"""The MoCo-v2 views: the same random draws and the same images as running every transform on
every image and keeping it where the draw says, with the work done only for the chosen images."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nas_pinas import augment

MEAN = torch.tensor([0.49, 0.48, 0.45]).view(1, 3, 1, 1)
STD = torch.tensor([0.25, 0.24, 0.26]).view(1, 3, 1, 1)


def blended_view(raw: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The previous formulation: jitter, grayscale and blur computed for the whole batch, then
    each image keeps the result or its input by its draw (blur: an identity kernel)."""
    x = augment.resized_crop_flip(raw.float().div(255), g)
    n = x.shape[0]
    apply = (torch.rand(n, generator=g) < 0.8).float().view(n, 1, 1, 1)
    b, c, s = (augment._rand(n, 1 - 0.4, 1 + 0.4, g).view(n, 1, 1, 1) for _ in range(3))
    hue = augment._rand(n, -0.4, 0.4, g) * 2 * math.pi
    w = augment._GRAY.view(1, 3, 1, 1)
    y = (x * b).clamp(0, 1)
    mean = (y * w).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    y = ((y - mean) * c + mean).clamp(0, 1)
    gray = (y * w).sum(1, keepdim=True)
    y = ((y - gray) * s + gray).clamp(0, 1)
    rot = torch.zeros(n, 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = hue.cos(), -hue.sin(), hue.sin(), hue.cos()
    y = torch.einsum("nij,njhw->nihw", torch.linalg.inv(augment._YIQ) @ rot @ augment._YIQ, y).clamp(0, 1)
    x = apply * y + (1 - apply) * x
    apply = (torch.rand(n, generator=g) < 0.2).float().view(n, 1, 1, 1)
    x = apply * (x * w).sum(1, keepdim=True).expand_as(x) + (1 - apply) * x
    blur = torch.rand(n, generator=g) < 0.5
    sig = augment._rand(n, 0.1, 2.0, g)
    offsets = torch.arange(3, dtype=torch.float32) - 1
    kernel = torch.exp(-(offsets.view(1, 3) ** 2) / (2 * sig.view(n, 1) ** 2))
    kernel = torch.where(blur.view(n, 1), kernel / kernel.sum(1, keepdim=True), torch.tensor([0.0, 1.0, 0.0]))
    kernel = kernel.repeat_interleave(3, 0)
    flat = x.reshape(1, n * 3, 32, 32)
    flat = F.conv2d(F.pad(flat, (1, 1, 0, 0), mode="reflect"), kernel.view(n * 3, 1, 1, 3), groups=n * 3)
    flat = F.conv2d(F.pad(flat, (0, 0, 1, 1), mode="reflect"), kernel.view(n * 3, 1, 3, 1), groups=n * 3)
    return (flat.view(n, 3, 32, 32) - MEAN) / STD


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_views_equal_the_whole_batch_blend_with_the_same_draws(seed):
    raw = torch.randint(0, 256, (48, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(100 + seed))
    mine, theirs = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    unit = raw.float().div(255)
    for _ in range(4):  # the views of one batch: the generator runs on from view to view
        view = augment.moco_v2_view(unit, mine, MEAN, STD)
        reference = blended_view(raw, theirs)
        gap = float((view - reference).abs().max())
        print(f"[margin] view vs whole-batch blend: observed {gap:.3g}, bound 1e-05")
        assert gap <= 1e-5
    assert torch.equal(mine.get_state(), theirs.get_state())
    # uint8 in, converted inside: the same view
    assert torch.equal(augment.moco_v2_view(raw, torch.Generator().manual_seed(7), MEAN, STD),
                       augment.moco_v2_view(unit, torch.Generator().manual_seed(7), MEAN, STD))


def mixed(n: int, p: float) -> tuple[int, torch.Tensor]:
    """A seed whose first draw (each transform draws which images it changes first) chooses
    some images but not all, and the images it chooses."""
    for seed in range(100):
        chosen = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < p
        if 0 < int(chosen.sum()) < n:
            return seed, chosen
    raise AssertionError("no mixed draw")


def test_blur_convolves_only_the_images_drawn_for_it(monkeypatch):
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    channels = []
    conv = F.conv2d

    def spy(inputs, weight, *args, **kwargs):
        channels.append(inputs.shape[1])
        return conv(inputs, weight, *args, **kwargs)

    monkeypatch.setattr(augment.F, "conv2d", spy)
    seed, chosen = mixed(16, 0.5)
    out = augment.gaussian_blur(x, torch.Generator().manual_seed(seed))
    assert channels == [3 * int(chosen.sum())] * 2  # before: 3 * 16 per pass, identity kernels for the rest
    assert torch.equal(out[~chosen], x[~chosen])
    channels.clear()
    assert augment.gaussian_blur(x, torch.Generator(), p=0.0) is x and channels == []


def test_jitter_and_grayscale_compute_only_the_images_drawn_for_them(monkeypatch):
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    images = []
    einsum = torch.einsum

    def spy(equation, *operands):
        images.append(operands[-1].shape[0])
        return einsum(equation, *operands)

    monkeypatch.setattr(augment.torch, "einsum", spy)
    seed, chosen = mixed(16, 0.8)
    out = augment.color_jitter(x, torch.Generator().manual_seed(seed))
    assert images == [int(chosen.sum())]  # before: all 16, blended away for the others
    assert torch.equal(out[~chosen], x[~chosen])
    seed, gray = mixed(16, 0.2)
    out = augment.random_grayscale(x, torch.Generator().manual_seed(seed))
    assert torch.equal(out[~gray], x[~gray])
    assert torch.equal(out[gray][:, 0], out[gray][:, 1]) and torch.equal(out[gray][:, 1], out[gray][:, 2])
    assert augment.color_jitter(x, torch.Generator(), p=0.0) is x and augment.random_grayscale(x, torch.Generator(), p=0.0) is x
