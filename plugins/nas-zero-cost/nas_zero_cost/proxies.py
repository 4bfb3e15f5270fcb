"""The proxies: each scores one standalone network without training; higher is better.

Every function takes a network it may modify (the evaluator passes a copy), a batch of
normalised images and their labels, and returns one float.

- ``naswot`` (Mellor et al., "Neural Architecture Search without Training", ICML 2021): run
  the batch's N images through the network and record, for every ReLU-like unit, whether it
  fired (a binary code per image). ``K_H[i, j]`` = number of units on which images i and j agree
  (units minus the Hamming distance of their codes); the score is ``log|det K_H|``. Networks
  whose units separate the inputs into distinct linear regions score higher. Labels unused.
- ``synflow`` (Tanaka et al. 2020, as a NAS proxy by Abdelfattah et al. 2021): with every
  parameter replaced by its absolute value and an all-ones input, R = sum of the outputs; the
  score is ``log sum(theta * dR/dtheta)``. Data-free (only the input shape is used). BN layers act
  as their (absolute) affine transform only -- statistics mean 0, variance 1 -- since synflow
  is defined on networks without batch statistics. Computed in float64.
- ``zen_score`` (Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition",
  ICCV 2021): with Gaussian inputs x and perturbations eps, ``Delta = E ||f(x) - f(x + alpha
  eps)||_F`` where f is the pre-pooling feature map; BN normalises every layer, so the scale
  lost there is put back: ``Zen = log Delta + sum_i log sigma_i``, sigma_i the square root of the
  mean (over channels) batch variance entering BN layer i. Data-free. The network's weights are
  used as given (the evaluator's ``gaussian_init`` makes them N(0, 1) as in the paper).
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATION_TYPES = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)
BATCHNORM_TYPES = (nn.modules.batchnorm._BatchNorm,)


@torch.no_grad()
def naswot(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """log|det K_H| of the agreement kernel of binary activation codes over a batch."""
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


def synflow(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """log of sum(theta * dR/dtheta) with |theta| weights and an all-ones input (data-free)."""
    net = net.double().eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, BATCHNORM_TYPES):
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=images.device)
    net(ones).sum().backward()
    total = sum(float((p.detach() * p.grad).sum()) for p in net.parameters() if p.grad is not None)
    return math.log(total) if total > 0 else float("-inf")


@torch.no_grad()
def gaussian_init(net: nn.Module) -> None:
    """Zen-NAS's initialisation: conv and linear weights N(0, 1), biases 0, BN affine identity."""
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(module.weight)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, BATCHNORM_TYPES) and module.affine:
            module.weight.fill_(1.0)
            module.bias.zero_()


def _pre_pooling_modules(net: nn.Module) -> tuple[nn.Module, ...]:
    """The modules whose output is the pre-pooling feature map: everything before the first
    global pool of ``head_features`` (nas-core subnets are stem -> layers -> head_features)."""
    head = list(net.head_features.children()) if hasattr(net, "head_features") else []
    kept = []
    for module in head:
        if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten)):
            break
        kept.append(module)
    return (net.stem, *net.layers, *kept)


@torch.no_grad()
def zen_score(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None, *, alpha: float = 0.01, repeats: int = 1) -> float:
    """log E||f(x) - f(x + alpha eps)||_F + sum_i log sigma_i over the network's BN layers.

    x and eps are standard Gaussian batches of the images' shape (drawn from torch's global
    generator: seed it), f the pre-pooling feature map in train mode (batch statistics).
    """
    feature = nn.Sequential(*_pre_pooling_modules(net)).train()
    bns = [m for m in feature.modules() if isinstance(m, BATCHNORM_TYPES)]
    variances: list[float] = []

    def record_variance(_module: nn.Module, inputs: tuple) -> None:
        x = inputs[0]
        variances.append(float(x.transpose(0, 1).flatten(1).var(dim=1, unbiased=False).mean()))

    total = 0.0
    log_sigma = 0.0
    for _ in range(repeats):
        x = torch.randn_like(images)
        eps = torch.randn_like(images)
        variances.clear()
        handles = [bn.register_forward_pre_hook(record_variance) for bn in bns]
        try:
            clean = feature(x)
        finally:
            for handle in handles:
                handle.remove()
        perturbed = feature(x + alpha * eps)
        total += float((clean - perturbed).flatten(1).norm(dim=1).mean())
        log_sigma += sum(0.5 * math.log(v) for v in variances if v > 0)
    delta, log_sigma = total / repeats, log_sigma / repeats
    return (math.log(delta) if delta > 0 else float("-inf")) + log_sigma


PROXIES = {"naswot": naswot, "synflow": synflow, "zen-score": zen_score}
