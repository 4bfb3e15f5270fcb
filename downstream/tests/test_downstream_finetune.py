"""``nas finetune``: flat, buildable configs whose pyramid follows each task's convention for the
exports of every registered space; the dry-run measures, and an input that cannot fit is refused
with one line before anything long runs."""

from __future__ import annotations

import importlib
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import nas_downstream
import nas_downstream.mmlab  # noqa: F401
from nas_core.api import NasError, space_names
from nas_core.testing import run_cli as main
from nas_downstream.cost import _num_classes, _synthetic_batch
from nas_downstream.finetune import TASKS, get_task, model_overrides, task_pyramid
from nas_downstream.sample_data import REFERENCE_EXPORTS as EXPORTS
from nas_downstream.sample_data import TASK_LAYOUT

pytestmark = pytest.mark.openmmlab

EXPECTED_LEVELS = {"retinanet": [8, 16, 32, 64, 128], "mask-rcnn": [4, 8, 16, 32, 64], "upernet": [4, 8, 16, 32]}


def test_every_registered_space_has_a_reference_export():
    assert sorted(space_names()) == sorted(EXPORTS)


def write(export, task, layouts, out, *extra) -> int:
    return main(["finetune", str(export), "--task", task, "--data-root", str(layouts[TASK_LAYOUT[task]]), "--out", str(out), *extra])


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("space", sorted(EXPORTS))
def test_finetune_config_follows_the_task_pyramid_and_trains(space, task, exports, sample_layouts, tmp_path, capsys):
    export = exports(space)
    out = tmp_path / f"{task}.py"
    assert write(export, task, sample_layouts, out) == 0
    printed = capsys.readouterr().out
    assert "backbone stages (stride:channels)" in printed and f"strides {EXPECTED_LEVELS[get_task(task).kind]}" in printed and "wrote" in printed
    text = out.read_text()
    assert "\n_base_" not in text and "nas_downstream.mmlab" in text
    cfg = Config.fromfile(str(out))
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.space, backbone.subnet) == ("NASBackbone", space, str(export / "subnet.pt"))
    scope = get_task(task).scope
    init_default_scope(scope)
    model = importlib.import_module(f"{scope}.registry").MODELS.build(cfg.model)
    model.init_weights()
    exported = torch.load(export / "subnet.pt", weights_only=True)["state_dict"]
    for key, value in model.backbone.body.state_dict().items():
        assert torch.equal(value, exported[key]), key

    # the strides the heads are configured with are the strides the neck really outputs
    model.eval()
    with torch.no_grad():
        features = model.backbone(torch.randn(1, 3, 256, 256))
    assert [256 // f.shape[-1] for f in features] == list(model.backbone.strides)
    assert [f.shape[1] for f in features] == list(model.backbone.out_channels)
    kind = get_task(task).kind
    if kind == "upernet":
        got = [256 // features[i].shape[-1] for i in cfg.model.decode_head.in_index]
    else:
        with torch.no_grad():
            got = [256 // o.shape[-1] for o in model.neck(features)]
        head = cfg.model.bbox_head if kind == "retinanet" else cfg.model.rpn_head
        assert list(head.anchor_generator.strides) == got
        if kind == "mask-rcnn":
            assert list(cfg.model.roi_head.bbox_roi_extractor.featmap_strides) == got[:-1] == list(cfg.model.roi_head.mask_roi_extractor.featmap_strides)
    assert got == EXPECTED_LEVELS[kind]
    assert min(model.backbone.strides[cfg.model.get("neck", {}).get("start_level", 0):]) >= got[0]  # nothing finer is fed

    # one training step (loss, backward, optimizer) on a small batch (2: UPerNet pools to 1x1 before BN)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    if kind == "upernet":
        model.data_preprocessor.size = (128, 128)
    before = [p.detach().clone() for p in model.backbone.parameters()]
    losses = model.train_step(_synthetic_batch(get_task(task), (128, 128), 2, _num_classes(cfg), seed=0), optim_wrapper)
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.backbone.parameters()))


def test_templates_are_what_finetune_derives_for_their_backbone():
    for name, task in TASKS.items():
        cfg = Config.fromfile(str(nas_downstream.finetune.CONFIGS / task.template))
        backbone = cfg.model.backbone
        expected = model_overrides(task, task_pyramid(task, backbone.space, backbone.space_options))
        for part, values in expected.items():
            for key, value in values.items():
                actual = cfg.model[part][key]
                if isinstance(value, dict):
                    actual = {k: actual[k] for k in value}
                    actual = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in actual.items()}
                    value = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in value.items()}
                elif isinstance(value, (list, tuple)):
                    actual, value = list(actual), list(value)
                assert actual == value, (name, part, key)


def test_dry_run_measures_one_training_iteration(exports, sample_layouts, tmp_path, capsys):
    assert write(exports("nas-bench-macro"), "retinanet-coco", sample_layouts, tmp_path / "r.py", "--input-size", "320x192", "--dry-run") == 0
    printed = capsys.readouterr().out
    assert "training input 320x192 (WxH), batch 2" in printed
    assert re.search(r"estimate: [\d.]+ GB peak memory", printed)
    match = re.search(r"dry run: one training iteration on cpu \(320x192 input, batch 2\): peak memory ([\d.]+) GB .*, ([\d.]+) s", printed)
    assert match, printed
    assert 0.3 < float(match.group(1)) < 8 and float(match.group(2)) > 0
    cfg = Config.fromfile(str(tmp_path / "r.py"))
    assert cfg.train_dataloader.dataset.pipeline[2].scale == (320, 192)


@pytest.mark.parametrize("flag", ["--dry-run", "--train"])
def test_an_input_that_cannot_fit_is_one_line_before_anything_long(flag, exports, sample_layouts, tmp_path, capsys):
    work_dir = tmp_path / "work"
    code = write(exports("nas-bench-macro"), "retinanet-coco", sample_layouts, tmp_path / "huge.py", "--input-size", "40000x30000", "--batch-size", "1", flag, "--work-dir", str(work_dir))
    captured = capsys.readouterr()
    assert code == 2
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and "40000x30000 input, batch 1 needs about" in errors[0]
    assert "lower --input-size (or --batch-size)" in errors[0]
    assert ("refusing to train" if flag == "--train" else "not running the dry-run iteration") in errors[0]
    assert "dry run:" not in captured.out and not work_dir.exists()
    assert (tmp_path / "huge.py").is_file()  # the config is written; nothing is lost


def test_finetune_errors_are_one_line(exports, tmp_path, capsys, monkeypatch):
    export = str(exports("nas-bench-macro"))
    out = str(tmp_path / "x.py")
    cases = [
        (["--task", "yolo-coco"], "unknown finetune task 'yolo-coco'"),
        (["--task", "retinanet-coco", "--input-size", "big"], "--input-size 'big': give width x height"),
        (["--task", "retinanet-coco", "--batch-size", "0"], "--batch-size 0"),
        (["--task", "retinanet-coco", "--out-indices", "0,2"], "must double from one to the next"),
        (["--task", "upernet-ade20k", "--out-indices", "7"], "space 'nas-bench-macro' has 3 feature stages"),
    ]
    for args, message in cases:
        assert main(["finetune", export, "--data-root", ".", "--out", out, *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert main(["finetune", str(tmp_path / "none"), "--task", "retinanet-coco", "--data-root", ".", "--out", out]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    real = importlib.import_module

    def missing(name, *args):
        if name == "mmcv":
            raise ImportError("No module named 'mmcv'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(NasError, match="install it with: bash scripts/install_openmmlab.sh"):
        nas_downstream.require_openmmlab()


def test_input_size_and_batch_size_change_crop_resize_and_batch(exports, sample_layouts, tmp_path, capsys):
    out = tmp_path / "city.py"
    assert write(exports("nas-bench-macro"), "upernet-cityscapes", sample_layouts, out, "--input-size", "512x256", "--batch-size", "1") == 0
    assert "training input 512x256 (WxH), batch 1 per device" in capsys.readouterr().out
    cfg = Config.fromfile(str(out))
    assert tuple(cfg.model.data_preprocessor.size) == (256, 512) and tuple(cfg.crop_size) == (256, 512)
    train = {step.type: step for step in cfg.train_dataloader.dataset.pipeline}
    assert tuple(train["RandomCrop"].crop_size) == (256, 512)
    assert tuple(train["RandomResize"].scale) == (1024, 512)  # mmseg's (2048, 1024) scaled like the crop
    test = {step.type: step for step in cfg.test_dataloader.dataset.pipeline}
    assert tuple(test["Resize"].scale) == (1024, 512)
    assert cfg.train_dataloader.batch_size == 1
