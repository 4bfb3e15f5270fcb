# UPerNet with a searched backbone on ADE20K (150 classes), mmseg's standard 160k schedule
# (SGD 0.01, poly decay, 512x512 crops, 16 images per step on 4 GPUs x 4).
#
#   nas finetune runs/x/export-22212202 --task upernet-ade20k --data-root /data/ADEChallengeData2016 --out my.py
#   python -m nas_downstream.train my.py
#
# The decoder takes C2-C5 (strides 4-32) for every backbone: the stages at strides 4 and 8 of
# this CIFAR-style backbone, not its stride-2 stage, and two stride-2 stages appended for C4, C5.
#
# data_root holds images/{training,validation} and annotations/{training,validation}.
_base_ = [
    "mmseg::_base_/models/upernet_r50.py",
    "mmseg::_base_/datasets/ade20k.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_160k.py",
]
custom_imports = dict(imports=["nas_downstream.mmlab"], allow_failed_imports=False)
runner_type = "NASRunner"  # mmengine's Runner; resumes only from checkpoints it wrote itself

data_root = "data/ade/ADEChallengeData2016"
crop_size = (512, 512)

model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
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
        norm_cfg=dict(type="SyncBN", requires_grad=True),
    ),
    decode_head=dict(in_channels=[128, 256, 512, 1024], in_index=[0, 1, 2, 3], num_classes=150),  # C2-C5
    auxiliary_head=dict(in_channels=512, in_index=2, num_classes=150),  # on C4
)

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
