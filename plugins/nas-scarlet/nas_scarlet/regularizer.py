"""The ``les`` regularizer: attaches the stabilizer to the supernet and removes it at export."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from nas_core.api import Arch, ComponentContext, NasError, PathOutput, Regularizer, Section, StepContext, Supernet
from nas_scarlet.les import LearnableSkip, attach_les, drop_les, fold_les


class LesOptions(Section):
    export: Literal["fold", "drop"] = Field(
        "fold", description="fold: inherit weights, LES folded into following layers (same function); drop: plain identity, retrain from scratch"
    )
    init: Literal["identity", "random"] = Field("identity", description="identity: W = I at start; random: a default-initialised 1x1 conv")


class ScarletSection(Section):
    """Plugin-wide settings (top-level ``scarlet:`` section of a run config)."""

    verify_export: bool = Field(True, description="check that a folded subnet computes what the stabilised path computed")
    verify_atol: float = Field(1e-4, gt=0, description="max abs logit difference accepted by that check")
    verify_input_size: int | None = Field(None, gt=0, description="side of the random check input (default: the space's input size)")


def drift(skip: LearnableSkip) -> float:
    """How far a stabilizer has moved from the plain skip: ``||W - I||_F / ||I||_F``
    (= ``||delta||_F / sqrt(C)``; 0 at identity initialisation)."""
    return float(skip.delta.detach().norm() / skip.channels**0.5)


class LesRegularizer(Regularizer):
    """ScarletNAS LES: every free identity choice becomes a learnable bias-free 1x1 linear map.

    Logged every step (``StepContext.metrics``): ``les/drift/L<layer>``, each stabilizer's
    ``||W - I||_F / ||I||_F`` at the start of the step (before its update), and
    ``les/drift_mean`` over the stabilised layers -- how far the learnable skips have moved
    from the plain identity, layer by layer.
    """

    def __init__(self, context: ComponentContext, options: LesOptions):
        self.context = context
        self.export_mode = options.export
        self.init = options.init
        self.replaced: list[tuple[int, int]] = []
        self.skips: list[tuple[int, LearnableSkip]] = []

    def attach(self, supernet: Supernet) -> None:
        self.replaced = attach_les(supernet, self.init)
        if not self.replaced:
            raise NasError(f"regularizers: les: space '{self.context.config.space.name}' has no free identity choice to stabilise")
        self.skips = [(layer, supernet.layers[layer].candidates[choice]) for layer, choice in self.replaced]

    def drift_metrics(self) -> dict[str, float]:
        """``les/drift/L<layer>`` per stabilised layer and their mean ``les/drift_mean``."""
        metrics = {f"les/drift/L{layer}": drift(skip) for layer, skip in self.skips}
        if metrics:
            metrics["les/drift_mean"] = sum(metrics.values()) / len(metrics)
        return metrics

    def path_loss(self, ctx: StepContext, index: int, output: PathOutput, loss: torch.Tensor | None) -> torch.Tensor | None:
        """Leaves the loss alone; on the step's first path (first slice) logs the drift."""
        if index == 0 and ctx.micro_batch == 0:
            ctx.metrics.update(self.drift_metrics())
        return loss

    def transform_export(self, subnet: nn.Module, arch: Arch) -> nn.Module:
        if not any(isinstance(layer, LearnableSkip) for layer in subnet.layers):
            return subnet
        if self.export_mode == "drop":
            return drop_les(subnet)
        section = self.context.section("scarlet")
        verify = section is None or section.verify_export
        reference = None
        if verify:
            side = (section.verify_input_size if section is not None else None) or self.context.space.input_size[0]
            probe = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0)).to(_device(subnet))
            was_training = subnet.training
            subnet.eval()
            with torch.no_grad():
                reference = subnet(probe)
        folded = fold_les(subnet)
        if reference is not None:
            with torch.no_grad():
                diff = (folded.eval()(probe) - reference).abs().max().item()
            folded.train(was_training)
            atol = section.verify_atol if section is not None else 1e-4
            if not diff <= atol:
                raise NasError(f"les: folded subnet differs from the stabilised path by {diff:.3g} (> scarlet.verify_atol {atol}); use les export mode 'drop'")
        return folded

    def state_dict(self) -> dict[str, Any]:
        return {"replaced": [list(p) for p in self.replaced]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = [tuple(int(v) for v in p) for p in state.get("replaced", [])]
        if saved and self.replaced and saved != self.replaced:
            raise NasError(f"les: checkpoint stabilised choices {saved} but this supernet has {self.replaced}")


def _device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")
