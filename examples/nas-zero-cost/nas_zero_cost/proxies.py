"""The proxies: each scores one standalone network from (at most) one batch; higher is better.

- ``synflow`` (Tanaka et al. 2020, as a NAS proxy by Abdelfattah et al. 2021): with every
  parameter replaced by its absolute value and an all-ones input, R = sum of the outputs;
  the score is sum over parameters of theta * dR/dtheta. Data-free. BatchNorm layers act as
  their (absolute) affine transform only -- statistics mean 0, variance 1 -- since synflow is
  defined on networks without batch statistics. Computed in float64; we return log(score) (the
  raw value spans many orders of magnitude; the ranking is the same).
- ``grad-norm``: the sum over parameters of the L2 norm of the cross-entropy gradient on a batch.
- ``snip`` (Lee et al. 2019): sum over parameters of |theta * dL/dtheta| on a batch.
- ``naswot`` (Mellor et al. 2021): binary activation codes of every ReLU-like unit for the N
  images of a batch; K[i, j] counts units on which images i and j agree; the score is
  log|det K|. Networks that separate inputs into distinct linear regions score higher.

Every function takes a network that it may modify (the evaluator passes a copy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATION_TYPES = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)


def _params(net: nn.Module) -> list[nn.Parameter]:
    return [p for p in net.parameters() if p.requires_grad]


def synflow(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """log of sum(theta * dR/dtheta) with |theta| weights and an all-ones input (data-free)."""
    net = net.double().eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=images.device)
    net(ones).sum().backward()
    total = sum(float((p.detach() * p.grad).sum()) for p in _params(net) if p.grad is not None)
    return float(torch.log(torch.tensor(total, dtype=torch.float64))) if total > 0 else float("-inf")


def _loss_backward(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> None:
    net.train()
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(images), labels).backward()


def grad_norm(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Sum over parameters of ||dL/dtheta||_2 for the cross-entropy loss on one batch."""
    _loss_backward(net, images, labels)
    return float(sum(p.grad.norm() for p in _params(net) if p.grad is not None))


def snip(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Sum over parameters of |theta * dL/dtheta| on one batch (connection sensitivity)."""
    _loss_backward(net, images, labels)
    return float(sum((p.detach() * p.grad).abs().sum() for p in _params(net) if p.grad is not None))


@torch.no_grad()
def naswot(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """log|det K| of the Hamming-agreement kernel of binary activation codes over a batch."""
    codes: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        codes.append((output.flatten(1) > 0).to(torch.float64))

    handles = [m.register_forward_hook(keep) for m in net.modules() if isinstance(m, ACTIVATION_TYPES)]
    try:
        net.train()
        net(images)
    finally:
        for handle in handles:
            handle.remove()
    if not codes:
        return 0.0
    c = torch.cat(codes, dim=1)
    kernel = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(kernel).logabsdet)


PROXIES = {"synflow": synflow, "grad-norm": grad_norm, "snip": snip, "naswot": naswot}
