"""``nas finetune``: an export becomes a flat, buildable config for every task."""

from __future__ import annotations

import importlib

import pytest
import torch
from mmengine.config import Config

import nas_downstream
import nas_downstream.mmlab  # noqa: F401
from nas_core.api import NasError
from nas_core.testing import export_subnet, open_run
from nas_core.testing import run_cli as main
from nas_downstream.finetune import TASKS

pytestmark = pytest.mark.openmmlab

ARCH = "12021102"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("export-run")
    run = open_run({"device": "cpu", "run_dir": str(run_dir), "space": {"name": "nas-bench-macro", "width": 0.25}, "evaluator": {"name": "accuracy", "bn_recal_batches": 0}})
    export_subnet(run, run.space.decode(ARCH), run_dir / "export", onnx=False)
    return run_dir / "export"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_finetune_writes_a_ready_config(task, export_dir, tmp_path, mm_fixtures, capsys):
    out = tmp_path / f"{task}.py"
    assert main(["finetune", str(export_dir), "--task", task, "--data-root", str(mm_fixtures), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    text = out.read_text()
    assert "\n_base_" not in text and "nas_downstream.mmlab" in text
    cfg = Config.fromfile(str(out))
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.space, backbone.arch, backbone.subnet) == ("NASBackbone", "nas-bench-macro", ARCH, str(export_dir / "subnet.pt"))
    assert cfg.train_dataloader.dataset.data_root == str(mm_fixtures.resolve())
    registry = importlib.import_module("mmseg.registry" if "upernet" in task else "mmdet.registry").MODELS
    model = registry.build(cfg.model)
    model.init_weights()
    exported = torch.load(export_dir / "subnet.pt", weights_only=True)["state_dict"]
    for key, value in model.backbone.body.state_dict().items():
        assert torch.equal(value, exported[key]), key
    # channels and strides of neck and heads fit the backbone: a whole prediction runs
    model.eval()
    meta = {"img_shape": (64, 96), "ori_shape": (64, 96), "pad_shape": (64, 96), "batch_input_shape": (64, 96), "scale_factor": (1.0, 1.0)}
    if "upernet" in task:
        from mmseg.structures import SegDataSample as Sample
    else:
        from mmdet.structures import DetDataSample as Sample
    with torch.no_grad():
        results = model.predict(torch.randn(1, 3, 64, 96), [Sample(metainfo=meta)])
    assert len(results) == 1
    if "upernet" in task:
        assert tuple(results[0].pred_sem_seg.data.shape[-2:]) == (64, 96)
    else:
        assert results[0].pred_instances.bboxes.shape[-1] == 4


def test_finetune_errors_are_one_line(export_dir, tmp_path, capsys, monkeypatch):
    assert main(["finetune", str(export_dir), "--task", "yolo-coco", "--data-root", ".", "--out", str(tmp_path / "x.py")]) == 2
    assert "unknown finetune task 'yolo-coco'" in capsys.readouterr().err
    assert main(["finetune", str(tmp_path / "none"), "--task", "retinanet-coco", "--data-root", ".", "--out", str(tmp_path / "x.py")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    real = importlib.import_module

    def missing(name, *args):
        if name == "mmcv":
            raise ImportError("No module named 'mmcv'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(NasError, match="install it with: bash scripts/install_openmmlab.sh"):
        nas_downstream.require_openmmlab()
