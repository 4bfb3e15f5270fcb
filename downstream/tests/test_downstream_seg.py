"""Segmentation on real fixtures: a searched backbone in mmseg's UPerNet overfits the Cityscapes
frame, training resumes from the run's own checkpoint, and an ADE20K-layout folder built from
real images goes through mmseg's ADE20KDataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

import nas_downstream.mmlab  # noqa: F401
from nas_downstream.runner import NASRunner
from nas_downstream.sample_data import ade20k_layout

pytestmark = [pytest.mark.openmmlab, pytest.mark.slow]

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "seg"
BN = dict(type="BN", requires_grad=True)
SIMPLE_PIPELINE = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"), dict(type="PackSegInputs")]


def tiny_seg_config(template: str, dataset: dict, work_dir: Path, iters: int, num_classes: int, checkpoint_every: int = 10_000) -> Config:
    """The template shrunk for CPU: width-0.25 NAS-Bench-Macro backbone, 32-channel UPerNet."""
    cfg = Config.fromfile(str(CONFIGS / template))
    cfg.merge_from_dict(dict(
        model=dict(
            data_preprocessor=dict(size=(128, 256)),
            backbone=dict(space_options=dict(width=0.25), arch="11111111", out_indices=(0, 1, 2), extra_stages=(), norm_cfg=BN),
            decode_head=dict(in_channels=[16, 32, 64], in_index=[0, 1, 2], channels=32, pool_scales=(1, 2, 4), dropout_ratio=0.0, norm_cfg=BN, num_classes=num_classes),
            auxiliary_head=dict(in_channels=32, in_index=1, channels=16, dropout_ratio=0.0, norm_cfg=BN, num_classes=num_classes),
        ),
        train_dataloader=dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(_delete_=True, **dataset)),
        val_dataloader=dict(batch_size=1, num_workers=0, persistent_workers=False, dataset=dict(_delete_=True, **dataset)),
        train_cfg=dict(max_iters=iters, val_interval=10_000),
        param_scheduler=[dict(type="PolyLR", eta_min=3e-5, power=0.9, begin=0, end=iters, by_epoch=False)],
        optim_wrapper=dict(_delete_=True, type="OptimWrapper", optimizer=dict(type="AdamW", lr=3e-3, weight_decay=1e-4)),
        default_hooks=dict(logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=checkpoint_every), visualization=dict(draw=False)),
        work_dir=str(work_dir),
        randomness=dict(seed=0),
    ))
    cfg.test_dataloader = cfg.val_dataloader
    return cfg


@pytest.fixture
def cityscapes(mm_fixtures) -> dict:
    root = mm_fixtures / "cityscapes"
    return dict(type="CityscapesDataset", data_root=str(root), data_prefix=dict(img_path="leftImg8bit/val", seg_map_path="gtFine/val"), pipeline=SIMPLE_PIPELINE)


# Learning rate of the overfit test. At 3e-3, the mIoU after 60 iterations depended on the
# trajectory: 23.6, 27.6, 33.6, 9.4 and 3.8 for randomness seeds 0-4 (another processor's rounding
# changes the trajectory as much as another seed), so "> 15" was a coin toss; 150 iterations did
# not fix it (seed 4: 4.0). At 1e-2, seeds 0-5 give 27.5, 20.8, 33.5, 32.3, 29.0 and 26.8 (before:
# 0.0-0.19): the bounds (after > 10, gain > 10) sit 2x below the lowest and ~4 standard deviations
# (4.4) below the mean.
OVERFIT_LR = 1e-2


def test_upernet_overfits_cityscapes_frame_and_resumes(cityscapes, tmp_path):
    work_dir = tmp_path / "work"
    cfg = tiny_seg_config("upernet_nas_80k_cityscapes-512x1024.py", cityscapes, work_dir, iters=60, num_classes=19, checkpoint_every=30)
    cfg.optim_wrapper.optimizer.lr = OVERFIT_LR
    runner = NASRunner.from_cfg(cfg)
    before = runner.val()["mIoU"]  # percent, over classes in the ground truth or the prediction
    runner.train()
    after = runner.val()["mIoU"]
    print(f"[margin] Cityscapes frame mIoU before training: observed {before:.3g}, bound 5")
    print(f"[margin] Cityscapes frame mIoU after 60 iterations: observed {after:.3g}, bound 10")
    print(f"[margin] Cityscapes frame mIoU gain: observed {after - before:.3g}, bound 10")
    assert before < 5 and after > 10 and after > before + 10

    # train-save-resume: a new process-like runner continues from the run's own checkpoint
    checkpoint = work_dir / "iter_30.pth"
    assert checkpoint.is_file()
    saved = torch.load(checkpoint, weights_only=False)["state_dict"]  # test's own file, for comparison
    cfg2 = tiny_seg_config("upernet_nas_80k_cityscapes-512x1024.py", cityscapes, work_dir, iters=32, num_classes=19, checkpoint_every=30)
    cfg2.optim_wrapper.optimizer.lr = OVERFIT_LR
    cfg2.merge_from_dict(dict(resume=True, load_from=str(checkpoint)))
    resumed = NASRunner.from_cfg(cfg2)
    resumed._init_model_weights()
    resumed.load_or_resume()
    assert resumed.iter == 30
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    resumed.train()  # two more iterations
    assert resumed.iter == 32


def test_ade20k_layout_goes_through_mmseg_ade20k_dataset(mm_fixtures, tmp_path):
    from mmseg.registry import DATASETS

    root = tmp_path / "ADEChallengeData2016"
    expected = ade20k_layout(mm_fixtures, root)
    template = Config.fromfile(str(CONFIGS / "upernet_nas_160k_ade20k-512x512.py"))
    # the template's own data sets (ADE20KDataset, its train and test pipelines) on the folder
    train_cfg = template.train_dataloader.dataset
    train_cfg.data_root = str(root)
    train = DATASETS.build(train_cfg)
    assert type(train).__name__ == "ADE20KDataset" and len(train) == 4 and len(train.metainfo["classes"]) == 150
    for i in range(len(train)):
        sample = train[i]
        height, width = sample["inputs"].shape[-2:]
        assert height <= 512 and width <= 512 and max(height, width) > 256  # RandomResize + RandomCrop
        values = set(np.unique(sample["data_samples"].gt_sem_seg.data.numpy()).tolist())
        assert values <= set(range(150)) | {255}
    val_cfg = template.val_dataloader.dataset
    val_cfg.data_root = str(root)
    val = DATASETS.build(val_cfg)
    assert len(val) == 2
    for i in range(len(val)):
        sample = val[i]
        name = Path(sample["data_samples"].img_path).stem
        got = sample["data_samples"].gt_sem_seg.data.numpy()[0]
        assert np.array_equal(got, expected[name])  # reduce_zero_label undid the ADE shift exactly

    # and a short fine-tune + IoU evaluation through mmengine's Runner on it
    simple = dict(type="ADE20KDataset", data_root=str(root), data_prefix=dict(img_path="images/validation", seg_map_path="annotations/validation"),
                  pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", reduce_zero_label=True), dict(type="PackSegInputs")])
    cfg = tiny_seg_config("upernet_nas_160k_ade20k-512x512.py", simple, tmp_path / "work", iters=2, num_classes=150)
    runner = NASRunner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    assert set(metrics) >= {"aAcc", "mIoU", "mAcc"} and np.isfinite(metrics["mIoU"])
    shutil.rmtree(tmp_path / "work", ignore_errors=True)
