"""The learnable equivariant stabilizer (LES) and its exact removal at export.

Inside the supernet every *free* identity choice (a :class:`nas_core.spaces.ops.Skip` whose
input and output shapes match) becomes :class:`LearnableSkip`, a bias-free 1x1 linear map
``y = W x`` with no BN and no activation. ``W = I + delta``: ``delta`` is the trained parameter
and starts at zero, so the stabilised supernet starts out computing exactly what the plain one
does, and weight decay pulls ``W`` towards the identity (hence stays invertible) instead of
towards the singular zero map.

Export (``mode: fold``) turns a stabilised path into the plain subnet -- identities where the
LES were -- computing the same function in eval mode. Write ``M`` for the product of the LES
maps not yet absorbed (the true activation is ``M h`` where ``h`` is the plain subnet's). Walking
the layers in order:

- an LES: ``M <- W M``, and the layer becomes a plain identity;
- a plain free identity: nothing changes;
- a block whose first op is a dense (non-grouped) conv -- an MBConv's 1x1 expansion, a
  non-free skip's 1x1 strided conv: that conv's weight absorbs ``M`` (``K[:, j] <- sum_i K[:, i]
  M[i, j]``, exact for any kernel size since ``M`` mixes channels pointwise).
  If the block has no residual connection, ``M`` is used up (``M <- I``). If it has one,
  ``y = M h + F(M h) = M (h + M^-1 F(M h))``: the block's projection conv + BN absorb ``M^-1``
  (BN folded into the conv weights, then set to identity statistics with the folded bias),
  and ``M`` stays pending for the next layer;
- at the end of the layers the head's first dense conv (or the classifier, if pooling comes
  first) absorbs ``M``.

``W`` must be invertible, which identity initialisation plus the ``I + delta`` form keep true
in practice; a badly conditioned product is reported as an error that suggests ``drop``.
``mode: drop`` replaces every LES by the plain identity without folding, for retraining the
exported architecture from scratch (the ScarletNAS paper's own protocol).

The folded projection BN has running mean 0 and variance 1: exact in eval mode; if the
exported subnet is fine-tuned, BN re-estimates its statistics from there.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from nas_core.api import InvertedResidual, NasError, Skip, Supernet

MAX_CONDITION = 1e6


class LearnableSkip(nn.Module):
    """LES: ``y = (I + delta) x`` as a bias-free 1x1 conv with no BN and no activation."""

    def __init__(self, channels: int, init: str = "identity"):
        super().__init__()
        self.channels = channels
        self.delta = nn.Parameter(torch.zeros(channels, channels))
        if init == "random":  # a default-initialised 1x1 conv, written as I + delta
            conv = nn.Conv2d(channels, channels, 1, bias=False)
            with torch.no_grad():
                self.delta.copy_(conv.weight[:, :, 0, 0] - torch.eye(channels))
        elif init != "identity":
            raise ValueError(f"unknown LES init '{init}'")

    def matrix(self) -> torch.Tensor:
        return torch.eye(self.channels, dtype=self.delta.dtype, device=self.delta.device) + self.delta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.matrix()[:, :, None, None])

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


def attach_les(supernet: Supernet, init: str = "identity") -> list[tuple[int, int]]:
    """Replace every free identity candidate by an LES; returns the (layer, choice) pairs."""
    replaced = []
    for i, layer in enumerate(supernet.layers):
        for c, candidate in enumerate(layer.candidates):
            if isinstance(candidate, Skip) and candidate.is_free:
                channels = _channels_of(supernet, i)
                layer.candidates[c] = LearnableSkip(channels, init)
                replaced.append((i, c))
    return replaced


def _channels_of(supernet: Supernet, index: int) -> int:
    """Channels at a shape-preserving layer: from any conv candidate's input width."""
    for candidate in supernet.layers[index].candidates:
        for module in candidate.modules():
            if isinstance(module, nn.Conv2d):
                return module.in_channels
    raise NasError(f"les: layer {index} has only identity candidates; cannot tell its channel count")


def drop_les(subnet: nn.Module) -> nn.Module:
    """Replace every LES by the plain identity (weights of the map are discarded)."""
    for i, layer in enumerate(subnet.layers):
        if isinstance(layer, LearnableSkip):
            subnet.layers[i] = Skip(layer.channels, layer.channels, 1)
    return subnet


# ----------------------------------------------------------------------------------- folding


def _absorb_input(conv: nn.Module, M: torch.Tensor) -> None:
    """``conv(M x) == conv'(x)``: fold a channel map into a dense conv's / linear's input side."""
    if isinstance(conv, nn.Conv2d):
        if conv.groups != 1:
            raise NasError("les: cannot fold into a grouped (depthwise) convolution; use les export mode 'drop'")
        w = conv.weight.detach().double()
        folded = torch.einsum("oikl,ij->ojkl", w, M)
    else:
        w = conv.weight.detach().double()
        folded = w @ M
    with torch.no_grad():
        conv.weight.copy_(folded.to(conv.weight.dtype))


def _absorb_output_inverse(conv: nn.Conv2d, bn: nn.BatchNorm2d, M_inv: torch.Tensor) -> None:
    """``M^-1 BN(conv(z)) == BN'(conv'(z))`` in eval mode: fold BN into the conv, then M^-1."""
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = bn.bias.detach().double() - bn.running_mean.double() * scale
    w = conv.weight.detach().double() * scale[:, None, None, None]
    w = torch.einsum("ij,jkab->ikab", M_inv, w)
    bias = M_inv @ bias
    with torch.no_grad():
        conv.weight.copy_(w.to(conv.weight.dtype))
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        bn.weight.fill_(float(torch.sqrt(torch.tensor(1.0 + bn.eps, dtype=torch.float64))))
        bn.bias.copy_(bias.to(bn.bias.dtype))


def _first_dense(module: nn.Module) -> nn.Module:
    """The first conv of a block, which must be the first op applied to its input."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise NasError(f"les: block {type(module).__name__} has no convolution to fold into; use les export mode 'drop'")


def _leaves(modules: list[nn.Module]) -> Iterator[nn.Module]:
    for module in modules:
        if isinstance(module, nn.Sequential):
            yield from _leaves(list(module))
        else:
            yield module


LINEAR_PASS = (nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity, nn.Dropout)


def _fold_into_head(subnet: nn.Module, M: torch.Tensor) -> None:
    for leaf in _leaves([subnet.head_features, subnet.classifier]):
        if isinstance(leaf, (nn.Conv2d, nn.Linear)):
            _absorb_input(leaf, M)
            return
        if not isinstance(leaf, LINEAR_PASS):
            break
    raise NasError("les: the head does not start with a convolution or linear layer to fold into; use les export mode 'drop'")


def _check_condition(M: torch.Tensor, where: int) -> torch.Tensor:
    cond = torch.linalg.cond(M).item()
    if not cond < MAX_CONDITION:
        raise NasError(f"les: the stabilizer before layer {where} is near-singular (condition number {cond:.3g}); use les export mode 'drop'")
    return torch.linalg.inv(M)


@torch.no_grad()
def fold_les(subnet: nn.Module) -> nn.Module:
    """Fold every LES of an extracted subnet so that it uses plain identities (see module doc)."""
    M: torch.Tensor | None = None
    for i, layer in enumerate(subnet.layers):
        if isinstance(layer, LearnableSkip):
            W = layer.matrix().detach().double().cpu()
            M = W if M is None else W @ M
            subnet.layers[i] = Skip(layer.channels, layer.channels, 1).to(layer.delta.device)
            continue
        if M is None:
            continue
        if isinstance(layer, Skip):
            if layer.is_free:
                continue
            _absorb_input(_first_dense(layer.proj), M.to(_device(layer)))
            M = None
        elif isinstance(layer, InvertedResidual):
            if isinstance(layer.expand, nn.Identity):
                raise NasError(f"les: layer {i} has no 1x1 expansion conv to fold the stabilizer into; use les export mode 'drop'")
            _absorb_input(_first_dense(layer.expand), M.to(_device(layer)))
            if layer.use_residual:
                conv, bn = layer.project[0], layer.project[1]
                _absorb_output_inverse(conv, bn, _check_condition(M, i).to(_device(layer)))
            else:
                M = None
        else:
            raise NasError(f"les: cannot fold the stabilizer into layer {i} ({type(layer).__name__}); use les export mode 'drop'")
    if M is not None:
        _fold_into_head(subnet, M.to(_device(subnet)))
    return subnet


def _device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")
