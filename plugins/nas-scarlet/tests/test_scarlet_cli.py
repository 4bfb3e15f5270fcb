"""From the command line: train a tiny stabilised supernet, search the Pareto front, export a point."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from nas_core.api import load_subnet, preserved_bn_state, recalibrate_bn
from nas_core.testing import load_trained_supernet, open_run
from nas_core.testing import run_cli as main

PRESET = Path(__file__).resolve().parents[1] / "configs" / "scarlet-macro.yaml"
MAX_FLOPS = 5.0e6


def test_pareto_search_and_export_from_the_cli(tmp_path: Path):
    tiny = [
        f"run_dir={tmp_path}", "data.train_subset=1000", "data.val_subset=200", "train.max_steps=6", "train.batch_size=32",
        "train.progress=false", "train.tensorboard=false", "evaluator.bn_recal_batches=1", "evaluator.batch_size=100",
        "search.searcher.population=6", "search.searcher.generations=2", f"search.constraints.max_flops={MAX_FLOPS}",
    ]
    assert main(["train", str(PRESET), *tiny]) == 0
    assert main(["search", str(PRESET), *tiny]) == 0
    result = json.loads((tmp_path / "search.json").read_text())
    front = result["pareto"]
    assert result["searcher"] == "nsga2" and front and (tmp_path / "pareto.png").is_file()
    assert all(p["macs"] <= MAX_FLOPS for p in front)  # constraint from the config
    for p in front:  # non-dominated among the feasible evaluated architectures
        assert not any(q["score"] >= p["score"] and q["macs"] <= p["macs"] and q["params"] <= p["params"]
                       and (q["score"], q["macs"], q["params"]) != (p["score"], p["macs"], p["params"])
                       for q in result["history"] if q["macs"] <= MAX_FLOPS)

    pick = len(front) - 1
    assert main(["export", str(PRESET), *tiny, "--pick", str(pick), "--out", str(tmp_path / "picked")]) == 0
    summary = json.loads((tmp_path / "picked" / "arch.json").read_text())
    print(f"[margin] export's own ONNX check: observed {summary['onnx_max_abs_diff']:.3g}, bound 0.0001")
    assert summary["arch"] == front[pick]["arch"] and summary["onnx_max_abs_diff"] < 1e-4
    # An architecture with every free identity taken: the stabilizers are folded away on export.
    assert main(["export", str(PRESET), *tiny, "--arch", "10100100", "--out", str(tmp_path / "skips")]) == 0

    run = open_run(PRESET, tiny)
    load_trained_supernet(run, tmp_path / "checkpoint.pt")
    for folder in ("picked", "skips"):
        subnet, arch = load_subnet(tmp_path / folder / "subnet.pt")  # plain network of the space
        state = torch.load(tmp_path / folder / "subnet.pt", weights_only=True)["state_dict"]
        assert not any("delta" in key for key in state)
        x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        supernet = run.supernet
        with preserved_bn_state(supernet), torch.no_grad():
            recalibrate_bn(lambda z: supernet(z, arch), supernet, run.evaluator.recalibration_batches())
            supernet.eval()
            reference = supernet(x, arch)  # the stabilised path, BN recalibrated as the export does
            print(f"[margin] {folder} subnet vs stabilised path: observed {(subnet.eval()(x) - reference).abs().max().item():.3g}, bound 1e-05")
            assert (subnet.eval()(x) - reference).abs().max().item() < 1e-5
