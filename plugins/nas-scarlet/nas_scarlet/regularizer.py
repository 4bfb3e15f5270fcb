"""The ``les`` regularizer: attaches the stabilizer to the supernet and removes it at export."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from nas_core.api import Arch, ComponentContext, NasError, Regularizer, Section, Supernet
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


class LesRegularizer(Regularizer):
    """ScarletNAS LES: every free identity choice becomes a learnable bias-free 1x1 linear map."""

    def __init__(self, context: ComponentContext, options: LesOptions):
        self.context = context
        self.export_mode = options.export
        self.init = options.init
        self.replaced: list[tuple[int, int]] = []

    def attach(self, supernet: Supernet) -> None:
        self.replaced = attach_les(supernet, self.init)
        if not self.replaced:
            raise NasError(f"regularizers: les: space '{self.context.config.space.name}' has no free identity choice to stabilise")

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
