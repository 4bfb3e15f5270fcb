"""Candidate ops of MBConv-style spaces, built by name through the op registry.

Every op factory takes ``(in_channels, out_channels, stride, **params)``. Convolutions have no
bias and are followed by BatchNorm, as in the standalone networks the ground truth was measured on.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "hswish": lambda: nn.Hardswish(inplace=True),
    "swish": lambda: nn.SiLU(inplace=True),
}


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without dropping more than 10% (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1, act: str | None = None) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if act is not None:
        layers.append(ACTIVATIONS[act]())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: pool, reduce, act, expand, gate (sigmoid or hard-sigmoid)."""

    def __init__(self, channels: int, reduced: int, act: str = "relu", gate: str = "sigmoid"):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = ACTIVATIONS[act]()
        self.expand = nn.Conv2d(reduced, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid() if gate == "hsigmoid" else nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(scale))))


class InvertedResidual(nn.Module):
    """MBConv: 1x1 expand (skipped at expansion 1), depthwise kxk, optional SE, 1x1 project.

    The residual is added only when stride is 1 and channels are unchanged.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        kernel: int = 3,
        expansion: float = 6,
        se_ratio: float = 0.0,
        se_base: str = "hidden",
        act: str = "relu",
        se_act: str = "relu",
        se_gate: str = "sigmoid",
        se_divisor: int = 1,
    ):
        super().__init__()
        hidden = int(round(in_channels * expansion))
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = conv_bn(in_channels, hidden, 1, act=act) if expansion != 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, kernel, stride, groups=hidden, act=act)
        if se_ratio > 0:
            base = hidden if se_base == "hidden" else in_channels
            reduced = max(1, make_divisible(base * se_ratio, se_divisor) if se_divisor > 1 else int(base * se_ratio))
            self.se: nn.Module = SqueezeExcite(hidden, reduced, se_act, se_gate)
        else:
            self.se = nn.Identity()
        self.project = conv_bn(hidden, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        return x + out if self.use_residual else out


class Skip(nn.Module):
    """Identity choice. Where the shape changes it cannot be free: a 1x1 (strided) conv + BN."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.is_free = stride == 1 and in_channels == out_channels
        self.proj = nn.Identity() if self.is_free else conv_bn(in_channels, out_channels, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def build_mbconv(in_channels: int, out_channels: int, stride: int, **params) -> nn.Module:
    """Inverted residual block (kernel, expansion, se_ratio, act, ...)."""
    return InvertedResidual(in_channels, out_channels, stride, **params)


def build_skip(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity, or 1x1 conv + BN where stride or channels change."""
    return Skip(in_channels, out_channels, stride)
