# Mask R-CNN with a searched backbone on COCO 2017 (boxes + instance masks), mmdet's standard
# 1x schedule (12 epochs, SGD 0.02 for 16 images per step, steps at epochs 8 and 11).
#
#   nas finetune runs/x/export-22212202 --task mask-rcnn-coco --data-root /data/coco --out my.py
#   python -m nas_downstream.train my.py
#
# The backbone below is NAS-Bench-Macro's best architecture without pretrained weights; `nas
# finetune` writes the same config for your export (pyramid, neck channels, anchor and RoI
# strides from the backbone's feature_info). Mask R-CNN's FPN is P2-P6 (strides 4-64) for every
# backbone: the stages at strides 4 and 8 feed it, the stride-2 stage does not, C4 / C5 come
# from two stride-2 stages appended to this CIFAR-style backbone, P6 is max-pooled from P5 and
# RoIs are pooled from P2-P5, as with a ResNet.
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
        out_indices=(1, 2),  # stages at strides 2, 4, 8 (64, 128, 256 channels): C2, C3
        extra_stages=(512, 1024),  # C4, C5: stride-2 stages appended (randomly initialised)
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=dict(type="BN", requires_grad=True),
    ),
    neck=dict(in_channels=[128, 256, 512, 1024], start_level=0, num_outs=5),
    rpn_head=dict(anchor_generator=dict(strides=[4, 8, 16, 32, 64])),  # P2-P6
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[4, 8, 16, 32]),  # P2-P5
        mask_roi_extractor=dict(featmap_strides=[4, 8, 16, 32]),
    ),
)

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + "annotations/instances_val2017.json")
test_evaluator = val_evaluator
