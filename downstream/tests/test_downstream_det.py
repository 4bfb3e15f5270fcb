"""Detection on the real COCO fixture: a searched backbone in mmdet's RetinaNet overfits the photo
(bbox mAP@0.5 from ~0 to >= 0.5), and Mask R-CNN trains and reports bbox + segm mAP.

The fixture's annotation file (mmdet's own test data) lists the same 512x288 photo four times:
image 0 carries the one trainable bus box (plus a crowd region), images 1-3 repeat the photo with
a duplicate of that box, a zero-width box and zero-area boxes -- edge cases for mmdet's loaders
that no detector can match. mmdet's CocoMetric scores every image of the annotation file, so
the tests write image 0 with its own annotations, unchanged, to a file of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mmengine.config import Config

import nas_downstream.mmlab  # noqa: F401
from nas_downstream.runner import NASRunner

pytestmark = [pytest.mark.openmmlab, pytest.mark.slow]

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "det"


def photo_annotations(fixtures: Path, out: Path, keep=lambda ann: True) -> Path:
    coco = json.loads((fixtures / "coco" / "coco_sample_color.json").read_text())
    coco["images"] = [im for im in coco["images"] if im["id"] == 0]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] == 0 and keep(a)]
    out.write_text(json.dumps(coco))
    return out


def tiny_det_config(template: str, ann_file: Path, image_dir: Path, work_dir: Path, iters: int, masks: bool = False) -> Config:
    """The template shrunk for CPU: width-0.25 NAS-Bench-Macro backbone, 32-channel neck, 256x144 images."""
    cfg = Config.fromfile(str(CONFIGS / template))
    load = dict(type="LoadAnnotations", with_bbox=True, with_mask=masks)
    train_pipeline = [dict(type="LoadImageFromFile"), load, dict(type="Resize", scale=(256, 144), keep_ratio=True), dict(type="PackDetInputs")]
    test_pipeline = [dict(type="LoadImageFromFile"), dict(type="Resize", scale=(256, 144), keep_ratio=True), load,
                     dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"))]
    dataset = dict(type="CocoDataset", data_root="", ann_file=str(ann_file), data_prefix=dict(img=str(image_dir) + "/"), metainfo=dict(classes=("bus", "car")))
    cfg.merge_from_dict(dict(
        model=dict(backbone=dict(space_options=dict(width=0.25), arch="11111111", out_indices=(1, 2), extra_stages=())),
        train_dataloader=dict(batch_size=2, num_workers=0, persistent_workers=False, sampler=dict(type="InfiniteSampler", shuffle=True), batch_sampler=None,
                              dataset=dict(_delete_=True, **dataset, filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline)),
        val_dataloader=dict(batch_size=1, num_workers=0, persistent_workers=False, dataset=dict(_delete_=True, **dataset, test_mode=True, pipeline=test_pipeline)),
        val_evaluator=dict(ann_file=str(ann_file), metric=["bbox", "segm"] if masks else "bbox"),
        train_cfg=dict(_delete_=True, type="IterBasedTrainLoop", max_iters=iters, val_interval=10_000),
        param_scheduler=[dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=20)],
        optim_wrapper=dict(_delete_=True, type="OptimWrapper", optimizer=dict(type="AdamW", lr=3e-3, weight_decay=1e-4), clip_grad=dict(max_norm=10)),
        default_hooks=dict(logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=10_000), visualization=dict(draw=False)),
        log_processor=dict(by_epoch=False),
        work_dir=str(work_dir),
        randomness=dict(seed=0),
    ))
    cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
    return cfg


def test_retinanet_with_searched_backbone_overfits_the_coco_photo(mm_fixtures, tmp_path):
    ann = photo_annotations(mm_fixtures, tmp_path / "photo.json")
    cfg = tiny_det_config("retinanet_nas-fpn_1x_coco.py", ann, mm_fixtures / "coco", tmp_path / "work", iters=70)
    cfg.merge_from_dict(dict(model=dict(
        neck=dict(in_channels=[32, 64], out_channels=32, num_outs=3),
        data_preprocessor=dict(pad_size_divisor=16),
        bbox_head=dict(num_classes=2, in_channels=32, feat_channels=32, stacked_convs=1, anchor_generator=dict(strides=[4, 8, 16])),
    )))
    runner = NASRunner.from_cfg(cfg)
    before = runner.val()["coco/bbox_mAP_50"]
    runner.train()
    after = runner.val()["coco/bbox_mAP_50"]
    # Margin: with one box to find, AP@0.5 is 1/rank of the first correct detection (or 0), so the
    # values are 1, 0.5, 0.33, ...; ">= 0.5" means the bus is among the two best-scored boxes.
    # Observed 1.0 after training and 0.0 before with randomness seeds 0, 1, 2 and 3 (a different
    # seed stands in for another processor's rounding, which changes the trajectory as much).
    print(f"[margin] COCO photo bbox mAP@0.5 before training: observed {before:.3g}, bound 0.1")
    print(f"[margin] COCO photo bbox mAP@0.5 after 70 iterations: observed {after:.3g}, bound 0.5")
    assert before < 0.1
    assert after >= 0.5


def test_mask_rcnn_with_searched_backbone_trains_and_reports_bbox_and_segm(mm_fixtures, tmp_path):
    # the crowd region of image 0 has no polygon; Mask R-CNN needs one for every instance
    ann = photo_annotations(mm_fixtures, tmp_path / "photo-masks.json", keep=lambda a: "segmentation" in a)
    cfg = tiny_det_config("mask-rcnn_nas-fpn_1x_coco.py", ann, mm_fixtures / "coco", tmp_path / "work", iters=3, masks=True)
    strides = [4, 8, 16, 32]
    cfg.merge_from_dict(dict(model=dict(
        neck=dict(in_channels=[32, 64], out_channels=32, num_outs=4),
        data_preprocessor=dict(pad_size_divisor=32),
        rpn_head=dict(in_channels=32, feat_channels=32, anchor_generator=dict(strides=strides)),
        roi_head=dict(
            bbox_roi_extractor=dict(out_channels=32, featmap_strides=strides),
            bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=2),
            mask_roi_extractor=dict(out_channels=32, featmap_strides=strides),
            mask_head=dict(in_channels=32, conv_out_channels=32, num_classes=2),
        ),
    )))
    runner = NASRunner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    assert {"coco/bbox_mAP", "coco/bbox_mAP_50", "coco/segm_mAP", "coco/segm_mAP_50"} <= set(metrics)
    assert all(metrics[k] >= 0 for k in ("coco/bbox_mAP_50", "coco/segm_mAP_50"))
