"""MoCo-v2 augmentation on whole uint8 batches (one generator, tensor ops only).

Per image and view: random resized crop (scale 0.2-1, aspect 3/4-4/3) and horizontal flip in
ONE affine resampling (bilinear ``grid_sample``); with p=0.8 colour jitter (brightness,
contrast, saturation, hue, each 0.4, applied in that fixed order -- torchvision shuffles the
order); grayscale with p=0.2; Gaussian blur with p=0.5 (sigma 0.1-2.0, kernel ~10% of the image
side, odd, at least 3). Hue is shifted by a rotation in YIQ space, a linear stand-in for the
HSV round trip that is exact for the hue angle and cheap on a batch. Output is normalised.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_GRAY = torch.tensor([0.299, 0.587, 0.114])


def _rand(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def resized_crop_flip(x: torch.Tensor, g: torch.Generator, scale: tuple[float, float] = (0.2, 1.0)) -> torch.Tensor:
    """Random resized crop + flip of a float batch (N, C, H, W) back to the same size."""
    n = x.shape[0]
    area = _rand(n, *scale, g)
    log_ratio = _rand(n, math.log(3 / 4), math.log(4 / 3), g)
    ratio = log_ratio.exp()
    w = (area * ratio).sqrt().clamp(max=1.0)  # fraction of the width
    h = (area / ratio).sqrt().clamp(max=1.0)
    cx = (torch.rand(n, generator=g) * 2 - 1) * (1 - w)  # centre in [-1, 1] keeping the box inside
    cy = (torch.rand(n, generator=g) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def color_jitter(x: torch.Tensor, g: torch.Generator, strength: float = 0.4, p: float = 0.8) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter on a [0, 1] batch, per image with prob p."""
    n, dev = x.shape[0], x.device
    apply = (torch.rand(n, generator=g) < p).float().view(n, 1, 1, 1).to(dev)
    b = _rand(n, 1 - strength, 1 + strength, g).view(n, 1, 1, 1).to(dev)
    c = _rand(n, 1 - strength, 1 + strength, g).view(n, 1, 1, 1).to(dev)
    s = _rand(n, 1 - strength, 1 + strength, g).view(n, 1, 1, 1).to(dev)
    hue = _rand(n, -min(strength, 0.5), min(strength, 0.5), g).to(dev) * 2 * math.pi
    gray_w = _GRAY.to(dev).view(1, 3, 1, 1)
    y = (x * b).clamp(0, 1)
    mean = (y * gray_w).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    y = ((y - mean) * c + mean).clamp(0, 1)
    gray = (y * gray_w).sum(1, keepdim=True)
    y = ((y - gray) * s + gray).clamp(0, 1)
    yiq, inv = _YIQ.to(dev), torch.linalg.inv(_YIQ).to(dev)
    cos, sin = hue.cos(), hue.sin()
    rot = torch.zeros(n, 3, 3, device=dev)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    matrix = inv @ rot @ yiq  # (n, 3, 3)
    y = torch.einsum("nij,njhw->nihw", matrix, y).clamp(0, 1)
    return apply * y + (1 - apply) * x


def random_grayscale(x: torch.Tensor, g: torch.Generator, p: float = 0.2) -> torch.Tensor:
    n = x.shape[0]
    apply = (torch.rand(n, generator=g) < p).float().view(n, 1, 1, 1).to(x.device)
    gray = (x * _GRAY.to(x.device).view(1, 3, 1, 1)).sum(1, keepdim=True).expand_as(x)
    return apply * gray + (1 - apply) * x


def gaussian_blur(x: torch.Tensor, g: torch.Generator, p: float = 0.5, sigma: tuple[float, float] = (0.1, 2.0)) -> torch.Tensor:
    """Separable Gaussian blur with a per-image sigma (a grouped conv over the whole batch)."""
    n, ch, hgt, wid = x.shape
    k = max(3, int(0.1 * min(hgt, wid)) // 2 * 2 + 1)
    apply = torch.rand(n, generator=g) < p
    sig = _rand(n, *sigma, g)
    offsets = torch.arange(k, dtype=torch.float32) - k // 2
    kernel = torch.exp(-(offsets.view(1, k) ** 2) / (2 * sig.view(n, 1) ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)
    identity = torch.zeros(k)
    identity[k // 2] = 1
    kernel = torch.where(apply.view(n, 1), kernel, identity.view(1, k)).to(x.device)
    kernel = kernel.repeat_interleave(ch, 0)  # (n*ch, k)
    flat = x.reshape(1, n * ch, hgt, wid)
    flat = F.conv2d(F.pad(flat, (k // 2, k // 2, 0, 0), mode="reflect"), kernel.view(n * ch, 1, 1, k), groups=n * ch)
    flat = F.conv2d(F.pad(flat, (0, 0, k // 2, k // 2), mode="reflect"), kernel.view(n * ch, 1, k, 1), groups=n * ch)
    return flat.view(n, ch, hgt, wid)


def moco_v2_view(raw: torch.Tensor, g: torch.Generator, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """One augmented, normalised view of a uint8 batch."""
    x = raw.float().div(255)
    x = resized_crop_flip(x, g)
    x = color_jitter(x, g)
    x = random_grayscale(x, g)
    x = gaussian_blur(x, g)
    return (x - mean) / std
