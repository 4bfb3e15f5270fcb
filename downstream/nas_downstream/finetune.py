"""``nas finetune``: an exported architecture -> a ready-to-run mmdet / mmseg config.

The task's template in ``configs/det`` or ``configs/seg`` (mmdet's / mmseg's standard
schedules) is loaded, its backbone replaced by the export's space, options, architecture and
weights, and everything that depends on the backbone's outputs is derived from its
``feature_info``: FPN input channels, anchor strides, RoI feature strides, UPerNet inputs and
the auxiliary head. The result is written as one flat config (no ``_base_`` left).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from nas_core.api import NasError, build_space
from nas_downstream.backbone import backbone_features
from nas_downstream.weights import WeightsFile

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True)
class Task:
    template: str
    kind: str  # retinanet, mask-rcnn or upernet
    levels: int  # how many of the backbone's deepest stages feed the neck / decoder
    coco: bool = False


TASKS = {
    "retinanet-coco": Task("det/retinanet_nas-fpn_1x_coco.py", "retinanet", 3, coco=True),
    "mask-rcnn-coco": Task("det/mask-rcnn_nas-fpn_1x_coco.py", "mask-rcnn", 4, coco=True),
    "upernet-ade20k": Task("seg/upernet_nas_160k_ade20k-512x512.py", "upernet", 4),
    "upernet-cityscapes": Task("seg/upernet_nas_80k_cityscapes-512x1024.py", "upernet", 4),
}


def default_out_indices(space_name: str, space_options: dict, task: Task) -> tuple[int, ...]:
    count = len(build_space(space_name, space_options).feature_info())
    return tuple(range(max(0, count - task.levels), count))


def task_overrides(task: Task, channels: Sequence[int], strides: Sequence[int]) -> dict[str, Any]:
    """The model settings that follow from the backbone's output channels and strides."""
    channels, s0 = list(channels), strides[0]
    pyramid = [s0 * 2**i for i in range(5)]  # FPN with 5 outputs from the first used level
    if task.kind == "retinanet":
        return {"neck": {"in_channels": channels, "start_level": 0, "add_extra_convs": "on_input", "num_outs": 5},
                "bbox_head": {"anchor_generator": {"strides": pyramid}}}
    if task.kind == "mask-rcnn":
        return {"neck": {"in_channels": channels, "num_outs": 5},
                "rpn_head": {"anchor_generator": {"strides": pyramid}},
                "roi_head": {"bbox_roi_extractor": {"featmap_strides": pyramid[:4]}, "mask_roi_extractor": {"featmap_strides": pyramid[:4]}}}
    aux = max(0, len(channels) - 2)
    return {"decode_head": {"in_channels": channels, "in_index": list(range(len(channels)))},
            "auxiliary_head": {"in_channels": channels[aux], "in_index": aux}}


def data_overrides(task: Task, data_root: str) -> dict[str, Any]:
    root = str(Path(data_root).expanduser().resolve())
    values: dict[str, Any] = {"data_root": root}
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        values[loader] = {"dataset": {"data_root": root}}
    if task.coco:
        ann = str(Path(root) / "annotations" / "instances_val2017.json")
        values["val_evaluator"] = {"ann_file": ann}
        values["test_evaluator"] = {"ann_file": ann}
    return values


def write_config(
    export: str | Path,
    task: str,
    data_root: str | Path,
    out: str | Path,
    supernet: str | Path | None = None,
    work_dir: str | Path | None = None,
    out_indices: Sequence[int] | None = None,
    template: str | Path | None = None,
) -> Path:
    """Write the config for fine-tuning ``export`` (a ``subnet.pt`` or its folder) on ``task``."""
    from mmengine.config import Config

    if task not in TASKS:
        raise NasError(f"unknown finetune task '{task}' (available: {', '.join(TASKS)})")
    spec = TASKS[task]
    header = WeightsFile.read(export, "subnet")  # weights_only; refuses anything but tensors and data
    weights = {"subnet": str(header.path), "supernet": None}
    if supernet is not None:
        checkpoint = WeightsFile.read(supernet, "supernet")
        if checkpoint.space != header.space:
            raise NasError(f"{supernet}: supernet of space '{checkpoint.space}', the export is of '{header.space}'")
        weights = {"subnet": None, "supernet": str(checkpoint.path)}
    indices = tuple(out_indices) if out_indices is not None else default_out_indices(header.space, header.space_options, spec)
    features = backbone_features(header.space, header.space_options, indices)
    template_path = Path(template) if template else CONFIGS / spec.template
    if not template_path.is_file():
        raise NasError(f"{template_path}: config template not found")
    cfg = Config.fromfile(str(template_path))
    out = Path(out)
    model = {
        "backbone": {"space": header.space, "space_options": header.space_options, "arch": header.arch, "out_indices": list(indices), **weights},
        **task_overrides(spec, features.channels, features.strides),
    }
    cfg.merge_from_dict({"model": model, **data_overrides(spec, str(data_root))})
    cfg.work_dir = str(Path(work_dir).resolve()) if work_dir else str(Path("work_dirs") / out.stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    header_text = (
        f"# Written by `nas finetune` for {header.space} architecture {header.arch} ({task}).\n"
        f"# Backbone outputs: channels {list(features.channels)}, strides {list(features.strides)}.\n"
        f"# Run: python -m nas_downstream.train {out}\n"
    )
    out.write_text(header_text + cfg.pretty_text)
    return out
