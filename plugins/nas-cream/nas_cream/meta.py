"""The meta-matching network and its meta-gradient update.

For each board entry B with stored images x_B and the entry's own outputs p_B, the current
student path gives ``w_B = M(softmax(student(x_B)) - p_B)`` (M: one linear layer over
``k * num_classes`` inputs). The teacher is the entry with the largest ``w_B``; the matching
score of THAT entry is ``rho = sigmoid(-w_B)`` (the reference code takes the last entry's score).

Meta update (:func:`meta_step`): a virtual SGD step of the student on ``rho * KD`` with
``create_graph``, then the cross-entropy of the virtually updated student on held-out images,
differentiated with respect to M only (the student's outputs that M reads are detached, so rho
depends on M alone). The supernet's weights, gradients and BN statistics are left exactly as
they were.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from nas_core.api import Arch, Supernet, preserved_bn_state

from nas_cream.board import PathBoard


class MetaMatchingNetwork(nn.Module):
    """``w = Linear(k * num_classes -> 1)`` of the flattened output difference, per entry."""

    def __init__(self, num_classes: int, stored_images: int):
        super().__init__()
        self.linear = nn.Linear(num_classes * stored_images, 1)

    def forward(self, difference: torch.Tensor) -> torch.Tensor:
        """``difference``: (K, k, num_classes) -> scores ``w`` of shape (K,)."""
        return self.linear(difference.flatten(1)).squeeze(1)


@dataclass
class TeacherChoice:
    index: int
    """Board position of the chosen teacher entry (argmax of the meta scores)."""
    rho: torch.Tensor
    """sigmoid(-w) of that same entry (a 0-dim tensor; carries M's graph when scores do)."""
    scores: torch.Tensor
    """All entries' meta scores w, (K,)."""


def choose_teacher(scores: torch.Tensor) -> TeacherChoice:
    """Teacher = argmax of the meta scores; rho from that same entry."""
    index = int(torch.argmax(scores.detach()))
    return TeacherChoice(index, torch.sigmoid(-scores[index]), scores)


def student_probs_on_board(supernet: Supernet, path: Arch, board: PathBoard) -> torch.Tensor:
    """The student path's softmax on every entry's stored images, (K, k, num_classes), no grad.

    One forward pass over all stored images together, in train mode (batch statistics, as in
    training), with the supernet's BN running statistics left untouched.
    """
    with torch.no_grad(), preserved_bn_state(supernet):
        supernet.train()
        logits = supernet(board.images(), path)
    return F.softmax(logits, dim=1).view(len(board), -1, logits.shape[1])


def meta_scores(meta: MetaMatchingNetwork, student_probs: torch.Tensor, board: PathBoard) -> torch.Tensor:
    return meta(student_probs - board.probs())


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """KD term: cross-entropy of the student's log-softmax against soft targets (temperature 1)."""
    return -(target_probs * F.log_softmax(logits, dim=1)).sum(1).mean()


def _hardsigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x / 6 + 0.5, 0.0, 1.0)


def _hardswish(x: torch.Tensor) -> torch.Tensor:
    return x * _hardsigmoid(x)


@contextmanager
def twice_differentiable(module: nn.Module) -> Iterator[None]:
    """Hard-sigmoid / hard-swish as clamp expressions (same values) inside the block.

    PyTorch has no second derivative for ``hardsigmoid_backward``; the virtual step needs one
    (SE gates of the Cream space use hard-sigmoid).
    """
    patched = []
    for m in module.modules():
        if isinstance(m, (nn.Hardsigmoid, nn.Hardswish)):
            m.forward = _hardsigmoid if isinstance(m, nn.Hardsigmoid) else _hardswish  # type: ignore[method-assign]
            patched.append(m)
    try:
        yield
    finally:
        for m in patched:
            del m.forward


def meta_step(
    meta: MetaMatchingNetwork,
    optimizer: torch.optim.Optimizer,
    supernet: Supernet,
    path: Arch,
    board: PathBoard,
    images: torch.Tensor,
    heldout_images: torch.Tensor,
    heldout_labels: torch.Tensor,
    virtual_lr: float,
    grad_clip: float,
) -> dict[str, float]:
    """One meta-gradient update of M; returns diagnostics. Changes M (and its optimiser) only."""
    params = dict(supernet.named_parameters())
    on_path = {id(p) for p in supernet.path_parameters(path)}
    names = [n for n, p in params.items() if id(p) in on_path]
    with preserved_bn_state(supernet), twice_differentiable(supernet):
        supernet.train()
        choice = choose_teacher(meta_scores(meta, student_probs_on_board(supernet, path, board), board))
        with torch.no_grad():
            target = F.softmax(supernet(images, board[choice.index].arch), dim=1)
        kd = soft_cross_entropy(supernet(images, path), target)
        grads = torch.autograd.grad(choice.rho * kd, [params[n] for n in names], create_graph=True, allow_unused=True)
        updated = dict(params)
        for name, grad in zip(names, grads):
            if grad is not None:
                updated[name] = params[name] - virtual_lr * grad
        heldout = F.cross_entropy(functional_call(supernet, updated, (heldout_images, path)), heldout_labels)
        meta_grads = torch.autograd.grad(heldout, list(meta.parameters()))
    for p, g in zip(meta.parameters(), meta_grads):
        p.grad = g.detach()
    norm = torch.nn.utils.clip_grad_norm_(list(meta.parameters()), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {"heldout_ce": float(heldout.detach()), "kd": float(kd.detach()), "rho": float(choice.rho.detach()), "grad_norm": float(norm)}
