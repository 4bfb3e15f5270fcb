# RetinaNet with a searched backbone on COCO 2017, mmdet's standard 1x schedule
# (12 epochs, SGD 0.01 for 8 images per step, steps at epochs 8 and 11, 500-iteration warm-up).
#
#   nas finetune runs/x/export-22212202 --task retinanet-coco --data-root /data/coco --out my.py
#   python -m nas_downstream.train my.py
#
# The backbone below is NAS-Bench-Macro's best architecture without pretrained weights; `nas
# finetune` writes the same config for your export (space, arch, weights, pyramid, neck channels
# and anchor strides taken from the backbone's feature_info). RetinaNet's pyramid is P3-P7
# (strides 8-128) for every backbone: the stage at stride 8 feeds the FPN, stages finer than
# that do not, and C4 / C5 come from two stride-2 stages appended to this CIFAR-style backbone
# (its deepest stride is 8); P6 and P7 are the FPN's extra convs, as with a ResNet.
_base_ = [
    "mmdet::_base_/models/retinanet_r50_fpn.py",
    "mmdet::_base_/datasets/coco_detection.py",
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
        out_indices=(2,),  # stages at strides 2, 4, 8 (64, 128, 256 channels): C3 is the stride-8 one
        extra_stages=(512, 1024),  # C4, C5: stride-2 stages appended (randomly initialised)
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=dict(type="BN", requires_grad=True),
    ),
    neck=dict(in_channels=[256, 512, 1024], start_level=0, add_extra_convs="on_input", num_outs=5),
    bbox_head=dict(anchor_generator=dict(strides=[8, 16, 32, 64, 128])),  # P3-P7
)

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + "annotations/instances_val2017.json")
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=0.01))  # 8 images per step (auto_scale_lr for others)
auto_scale_lr = dict(enable=False, base_batch_size=8)
