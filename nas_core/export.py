"""Export the chosen subnet: a standalone module with inherited, BN-recalibrated weights.

Output folder: ``subnet.pt`` (``{"format", "space", "space_options", "arch", "weights",
"state_dict"}``, readable with ``weights_only=True``), ``arch.json`` and ``subnet.onnx`` (checked
against PyTorch with onnxruntime). ``weights`` says where the weights come from: ``"supernet"``
(inherited from the trained supernet) or ``"initial"`` (the freshly built supernet's, when the
evaluator is training-free and no supernet was trained: train the network downstream). With a
latency table (``search.latency_table``) ``arch.json`` also holds the network's predicted
latency and, on the table's device, its measured latency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from nas_core.checked_json import write_json_atomic
from nas_core.checkpoint import SUBNET_FORMAT, SUBNET_NAME, read_subnet, save_atomic
from nas_core.errors import CheckpointError, NasError
from nas_core.evaluation import preserved_bn_state, recalibrate_bn
from nas_core.latency.runs import export_record
from nas_core.run import Run
from nas_core.named_spaces import build_space
from nas_core.spaces.supernet import Arch


def extract_subnet(run: Run, arch: Arch, recalibrate: bool = True) -> nn.Module:
    """The path as a standalone network: BN statistics recalibrated for it, then each
    regularizer's export transform applied (e.g. folding a learnable skip)."""
    supernet = run.supernet
    with preserved_bn_state(supernet):
        recal = run.evaluator.recalibration_batches() if recalibrate else []
        if recal:
            recalibrate_bn(lambda x: supernet(x, arch), supernet, recal)
        subnet = supernet.extract(arch)
    for regularizer in run.regularizers:
        subnet = regularizer.transform_export(subnet, arch)
    return subnet.eval()


def export_onnx(subnet: nn.Module, path: Path, input_shape: tuple[int, ...], opset: int) -> float:
    """Write ONNX and return the max abs difference between onnxruntime and PyTorch outputs."""
    import onnxruntime as ort

    subnet = subnet.eval().cpu()
    example = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
    torch.onnx.export(subnet, (example,), str(path), input_names=["images"], output_names=["logits"], opset_version=opset,
                      dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"images": example.numpy()})
    with torch.no_grad():
        torch_out = subnet(example).numpy()
    return float(np.abs(onnx_out - torch_out).max())


def export_subnet(run: Run, arch: Arch, out_dir: Path, onnx: bool = True, weights: Literal["supernet", "initial"] = "supernet") -> dict[str, Any]:
    """Write the subnet of ``arch``; ``weights`` records whether the run's supernet was trained
    (``"supernet"``) or is freshly built (``"initial"``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    space = run.space
    subnet = extract_subnet(run, arch)
    macs, params = space.complexity(arch)
    record = {
        "format": SUBNET_FORMAT,
        "space": run.config.space.name,
        "space_options": run.config.space.options.model_dump(mode="json"),
        "arch": space.encode(arch),
        "ops": space.describe(arch),
        "macs": macs,
        "params": params,
        "weights": weights,
        "feature_info": [vars(f) for f in space.feature_info()],
    }
    save_atomic({**record, "state_dict": {k: v.cpu() for k, v in subnet.state_dict().items()}}, out_dir / SUBNET_NAME)
    summary = dict(record)
    if onnx:
        diff = export_onnx(subnet, out_dir / "subnet.onnx", (1, 3, *space.input_size), run.config.export.onnx_opset)
        if diff > 1e-3:
            raise NasError(f"ONNX export differs from PyTorch by {diff:.2e} (max abs); not trusted")
        summary["onnx_max_abs_diff"] = diff
    summary["latency"] = export_record(run, subnet, arch)
    write_json_atomic(summary, out_dir / "arch.json")
    return summary


def load_subnet(path: str | Path) -> tuple[nn.Module, Arch]:
    """Rebuild an exported subnet (``subnet.pt`` or its folder) as a plain network of its space
    (found among the installed plugins' spaces) and load its weights."""
    state = read_subnet(path)
    space = build_space(state["space"], state["space_options"])
    arch = space.decode(state["arch"])
    subnet = space.build_subnet(arch)
    try:
        subnet.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit architecture {state['arch']} ({str(exc).splitlines()[0][:200]})") from None
    return subnet, arch
