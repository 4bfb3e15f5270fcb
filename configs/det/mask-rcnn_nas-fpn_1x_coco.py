# Mask R-CNN with a searched backbone on COCO 2017 (boxes + instance masks), mmdet's standard
# 1x schedule (12 epochs, SGD 0.02 for 16 images per step, steps at epochs 8 and 11).
#
#   nas finetune runs/x/export-22212202 --task mask-rcnn-coco --data-root /data/coco --out my.py
#   python -m nas_downstream.train my.py
#
# The backbone below is NAS-Bench-Macro's best architecture without pretrained weights; `nas
# finetune` writes the same config for your export (neck channels, anchor and RoI strides from
# the backbone's feature_info).
_base_ = [
    "mmdet::_base_/models/mask-rcnn_r50_fpn.py",
    "mmdet::_base_/datasets/coco_instance.py",
    "mmdet::_base_/schedules/schedule_1x.py",
    "mmdet::_base_/default_runtime.py",
]
custom_imports = dict(imports=["nas_downstream.mmlab"], allow_failed_imports=False)
runner_type = "NASRunner"  # mmengine's Runner; resumes only from checkpoints it wrote itself

data_root = "data/coco/"  # folder with annotations/, train2017/, val2017/

model = dict(
    backbone=dict(
        _delete_=True,
        type="NASBackbone",
        space="nas-bench-macro",
        space_options=dict(width=1.0),
        arch="22212202",
        supernet=None,  # a supernet checkpoint.pt: weights inherited for `arch`
        subnet=None,  # or an exported subnet.pt / export folder
        out_indices=(0, 1, 2),  # channels 64, 128, 256 at strides 2, 4, 8
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=dict(type="BN", requires_grad=True),
    ),
    neck=dict(in_channels=[64, 128, 256], num_outs=5),
    rpn_head=dict(anchor_generator=dict(strides=[2, 4, 8, 16, 32])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[2, 4, 8, 16]),
        mask_roi_extractor=dict(featmap_strides=[2, 4, 8, 16]),
    ),
)

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + "annotations/instances_val2017.json")
test_evaluator = val_evaluator
