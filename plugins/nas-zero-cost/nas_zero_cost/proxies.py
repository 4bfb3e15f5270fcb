"""The proxies: each scores one network without training; higher is better.

Every function takes a network, a batch of normalised images and their labels, and returns one
float. The network is left exactly as it was (weights, BN buffers, train/eval modes), so the
evaluator scores a path of the supernet in place (``supernet.path(arch)``) instead of a copy.

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

NASWOT and Zen-score run the network in train mode (batch statistics) as the papers do, with
the BN layers' running statistics neither read nor updated (:func:`batch_statistics`).
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
from torch import nn

ACTIVATION_TYPES = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)
BATCHNORM_TYPES = (nn.modules.batchnorm._BatchNorm,)


@contextlib.contextmanager
def restored_modes(net: nn.Module) -> Iterator[nn.Module]:
    """Every module's train/eval mode as it was before the block (a supernet's modules need not
    share one mode, so ``net.train(was_training)`` would not do)."""
    modes = [(m, m.training) for m in net.modules()]
    try:
        yield net
    finally:
        for module, training in modes:
            module.training = training


@contextlib.contextmanager
def batch_statistics(net: nn.Module) -> Iterator[nn.Module]:
    """Train mode with BN normalising by the batch's statistics -- what a fresh copy of the
    network does in train mode -- while every running statistic is neither read nor updated
    (``track_running_stats`` off for the duration). Modes and flags are restored afterwards."""
    tracking = [(m, m.track_running_stats) for m in net.modules() if isinstance(m, BATCHNORM_TYPES)]
    with restored_modes(net):
        try:
            net.train()
            for bn, _ in tracking:
                bn.track_running_stats = False
            yield net
        finally:
            for bn, flag in tracking:
                bn.track_running_stats = flag


class AgreementKernel:
    """``K_H`` built up one activation layer at a time, as a forward hook.

    With C the N x U matrix of 0/1 codes, ``K_H = C C^T + (1 - C)(1 - C)^T``
    ``= 2 C C^T - r 1^T - 1 r^T + U`` (r: units fired per image), so each layer adds its own
    ``C_l C_l^T`` and row sums and nothing of size N x U is kept or concatenated.

    ``C_l C_l^T`` is computed in float32 and is EXACT: its entries are sums of 0/1 products, so
    every partial sum the matmul forms, in whatever order or blocking (also TF32/bf16 inputs on
    CUDA, which represent 0 and 1 exactly with float32 accumulation), is an integer no larger
    than the number of columns summed -- and float32 represents every integer up to 2^24
    exactly. Layers wider than 2^24 units are therefore split into chunks of at most 2^24
    columns. The per-layer results are accumulated in float64 (integers exact up to 2^53), so
    the kernel is the same integer matrix the float64 reference computes, bit for bit, and
    ``slogdet`` (in float64) gets identical input.
    """

    EXACT_FLOAT32_COLUMNS = 2**24

    def __init__(self, size: int, device: torch.device):
        self.gram = torch.zeros(size, size, dtype=torch.float64, device=device)
        self.fired = torch.zeros(size, dtype=torch.float64, device=device)
        self.units = 0

    def add(self, _module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        codes = output.detach().flatten(1) > 0
        for chunk in codes.split(self.EXACT_FLOAT32_COLUMNS, dim=1):
            chunk = chunk.to(torch.float32)
            self.gram += (chunk @ chunk.T).to(torch.float64)
        self.fired += codes.sum(dim=1)
        self.units += codes.shape[1]

    def matrix(self) -> torch.Tensor:
        return 2 * self.gram - self.fired[:, None] - self.fired[None, :] + self.units


@torch.no_grad()
def naswot_kernel(net: nn.Module, images: torch.Tensor) -> AgreementKernel:
    """The agreement kernel of the network's binary activation codes over the batch."""
    kernel = AgreementKernel(len(images), images.device)
    handles = [m.register_forward_hook(kernel.add) for m in net.modules() if isinstance(m, ACTIVATION_TYPES)]
    try:
        with batch_statistics(net):
            net(images)
    finally:
        for handle in handles:
            handle.remove()
    return kernel


def naswot(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """log|det K_H| of the agreement kernel of binary activation codes over a batch."""
    kernel = naswot_kernel(net, images)
    if not kernel.units:
        return 0.0
    return float(torch.linalg.slogdet(kernel.matrix()).logabsdet)


def synflow(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """log of sum(theta * dR/dtheta) with |theta| weights and an all-ones input (data-free).

    The network runs (eval mode) through ``torch.func.functional_call`` on float64 absolute
    copies of its parameters and 0/1 BN statistics: nothing of the network itself is changed,
    and only the parameters it uses are copied.
    """
    params = {name: p.detach().abs().double().requires_grad_() for name, p in net.named_parameters()}
    buffers = {}
    for name, module in net.named_modules():
        prefix = f"{name}." if name else ""
        for key, buffer in module.named_buffers(recurse=False):
            if not buffer.is_floating_point():
                continue
            if isinstance(module, BATCHNORM_TYPES) and key in ("running_mean", "running_var"):
                fill = 0.0 if key == "running_mean" else 1.0
                buffers[prefix + key] = torch.full_like(buffer, fill, dtype=torch.float64)
            else:
                buffers[prefix + key] = buffer.detach().double()
    ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=images.device)
    with restored_modes(net):
        net.eval()
        output = torch.func.functional_call(net, {**params, **buffers}, (ones,))
    wanted = list(params.values())
    grads = torch.autograd.grad(output.sum(), wanted, allow_unused=True)
    total = sum(float((p.detach() * g).sum()) for p, g in zip(wanted, grads) if g is not None)
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
    feature = nn.Sequential(*_pre_pooling_modules(net))
    bns = [m for m in feature.modules() if isinstance(m, BATCHNORM_TYPES)]
    variances: list[float] = []

    def record_variance(_module: nn.Module, inputs: tuple) -> None:
        x = inputs[0]
        variances.append(float(x.transpose(0, 1).flatten(1).var(dim=1, unbiased=False).mean()))

    total = 0.0
    log_sigma = 0.0
    with batch_statistics(feature):
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
