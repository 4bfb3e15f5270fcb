"""``nas finetune``: an exported architecture -> a ready-to-run mmdet / mmseg config.

The task's template in ``configs/det`` or ``configs/seg`` (mmdet's / mmseg's standard
schedules, input sizes and pipelines) is loaded, its backbone replaced by the export's space,
options, architecture and weights, and everything that depends on the backbone is derived from
its ``feature_info`` by the task's pyramid convention (:mod:`nas_downstream.pyramid`): which
stages feed the neck, extra stride-2 stages for missing coarse levels, FPN / UPerNet input
channels, anchor strides, RoI feature strides and the auxiliary head. ``input_size`` and
``batch_size`` change the pipelines' scale / crop and the per-device batch. The result is
written as one flat config (no ``_base_`` left).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from nas_core.api import NasError, build_space
from nas_downstream.pyramid import Convention, Pyramid, Stage, build_pyramid
from nas_downstream.weights import WeightsFile

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

RETINANET = Convention(finest=8, coarsest=128, neck="fpn")  # P3-P7
MASK_RCNN = Convention(finest=4, coarsest=64, neck="fpn")  # P2-P6, RoIs from P2-P5
UPERNET = Convention(finest=4, coarsest=32, neck="decoder")  # C2-C5


@dataclass(frozen=True)
class Task:
    template: str
    kind: str  # retinanet, mask-rcnn or upernet
    convention: Convention
    input_size: tuple[int, int]  # the template's training input, width x height
    coco: bool = False

    @property
    def scope(self) -> str:
        return "mmseg" if self.kind == "upernet" else "mmdet"


TASKS = {
    "retinanet-coco": Task("det/retinanet_nas-fpn_1x_coco.py", "retinanet", RETINANET, (1333, 800), coco=True),
    "mask-rcnn-coco": Task("det/mask-rcnn_nas-fpn_1x_coco.py", "mask-rcnn", MASK_RCNN, (1333, 800), coco=True),
    "upernet-ade20k": Task("seg/upernet_nas_160k_ade20k-512x512.py", "upernet", UPERNET, (512, 512)),
    "upernet-cityscapes": Task("seg/upernet_nas_80k_cityscapes-512x1024.py", "upernet", UPERNET, (1024, 512)),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise NasError(f"unknown finetune task '{name}' (available: {', '.join(TASKS)})")
    return TASKS[name]


def space_stages(space_name: str, space_options: dict) -> tuple[Stage, ...]:
    return tuple(Stage(i, f.channels, f.stride) for i, f in enumerate(build_space(space_name, space_options).feature_info()))


def task_pyramid(task: Task, space_name: str, space_options: dict, out_indices: Sequence[int] | None = None) -> Pyramid:
    """The pyramid ``task`` builds on the space's backbone (``out_indices`` overrides the stages fed)."""
    stages = space_stages(space_name, space_options)
    if out_indices is not None and any(not 0 <= int(i) < len(stages) for i in out_indices):
        raise NasError(f"--out-indices {list(out_indices)}: space '{space_name}' has {len(stages)} feature stages (0..{len(stages) - 1})")
    return build_pyramid(stages, task.convention, out_indices)


def model_overrides(task: Task, pyramid: Pyramid) -> dict[str, Any]:
    """The model settings that follow from the pyramid: neck, anchors, RoIs, decoder inputs."""
    channels, strides, start = pyramid.in_channels, pyramid.out_strides, pyramid.start_level
    all_channels = [s.channels for s in pyramid.outputs]
    backbone = {"out_indices": list(pyramid.out_indices), "extra_stages": list(pyramid.extra_stages)}
    if task.kind == "retinanet":  # P6, P7 from stride-2 convs on the deepest input, as mmdet's RetinaNet
        return {"backbone": backbone,
                "neck": {"in_channels": all_channels, "start_level": start, "add_extra_convs": "on_input", "num_outs": len(strides)},
                "bbox_head": {"anchor_generator": {"strides": strides}}}
    if task.kind == "mask-rcnn":  # P6 by max-pooling P5, RoIs from all but the coarsest level
        return {"backbone": backbone,
                "neck": {"in_channels": all_channels, "start_level": start, "num_outs": len(strides)},
                "rpn_head": {"anchor_generator": {"strides": strides}},
                "roi_head": {"bbox_roi_extractor": {"featmap_strides": strides[:-1]}, "mask_roi_extractor": {"featmap_strides": strides[:-1]}}}
    used = list(range(start, start + len(channels)))
    aux = used[-2] if len(used) >= 2 else used[-1]  # mmseg's UPerNet: auxiliary FCN head on C4
    return {"backbone": backbone,
            "decode_head": {"in_channels": channels, "in_index": used},
            "auxiliary_head": {"in_channels": all_channels[aux], "in_index": aux}}


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


def parse_size(text: str) -> tuple[int, int]:
    """``"1333x800"`` -> (1333, 800): width x height in pixels."""
    try:
        width, height = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise NasError(f"--input-size '{text}': give width x height in pixels, e.g. 1333x800") from None
    if width < 32 or height < 32:
        raise NasError(f"--input-size '{text}': width and height must be at least 32 pixels")
    return width, height


def _scaled(value: Sequence[int], factor: float) -> tuple[int, ...]:
    return tuple(max(1, round(v * factor)) for v in value)


def apply_input_size(cfg, task: Task, size: tuple[int, int]) -> None:
    """Change the training input of a task config to ``size`` (width, height).

    Detection: the Resize scale of every pipeline (images are resized to fit ``size``, keeping
    their aspect ratio). Segmentation: the crop (and the data preprocessor's padding), with the
    RandomResize / Resize scales scaled by the same factor, so a crop covers the same part of
    the image as in the template.
    """
    width, height = size
    pipelines = [cfg.train_dataloader.dataset.pipeline, cfg.val_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline]
    pipelines += [cfg[k] for k in ("train_pipeline", "test_pipeline") if k in cfg]
    factor = width / task.input_size[0]
    for pipeline in pipelines:
        for step in pipeline:
            if task.scope == "mmdet" and step.get("type") == "Resize":
                step["scale"] = (width, height)
            elif task.scope == "mmseg" and step.get("type") in ("Resize", "RandomResize"):
                step["scale"] = _scaled(step["scale"], factor)
            elif step.get("type") == "RandomCrop":
                step["crop_size"] = (height, width)
    if task.scope == "mmseg":
        cfg.crop_size = (height, width)
        cfg.model.data_preprocessor.size = (height, width)


def configured_input(cfg, task: Task) -> tuple[tuple[int, int], int]:
    """(width, height) of a training input and images per step, as a config will train."""
    batch = int(cfg.train_dataloader.batch_size)
    if task.scope == "mmseg":
        height, width = cfg.model.data_preprocessor.size
        return (int(width), int(height)), batch
    for step in cfg.train_dataloader.dataset.pipeline:
        if step.get("type") == "Resize":
            width, height = step["scale"]
            return (int(width), int(height)), batch
    return task.input_size, batch


@dataclass(frozen=True)
class Written:
    """What ``write_config`` wrote: the file and the facts ``nas finetune`` prints."""

    path: Path
    task: Task
    space: str
    arch: str
    pyramid: Pyramid
    input_size: tuple[int, int]
    batch_size: int

    def describe(self) -> list[str]:
        width, height = self.input_size
        return [f"{self.space} {self.arch} for {self.task.kind}: training input {width}x{height} (WxH), batch {self.batch_size} per device",
                *self.pyramid.describe()]


def write_config(
    export: str | Path,
    task: str,
    data_root: str | Path,
    out: str | Path,
    supernet: str | Path | None = None,
    work_dir: str | Path | None = None,
    out_indices: Sequence[int] | None = None,
    template: str | Path | None = None,
    input_size: tuple[int, int] | None = None,
    batch_size: int | None = None,
) -> Written:
    """Write the config for fine-tuning ``export`` (a ``subnet.pt`` or its folder) on ``task``."""
    from mmengine.config import Config

    spec = get_task(task)
    header = WeightsFile.read(export, "subnet")  # weights_only; refuses anything but tensors and data
    weights = {"subnet": str(header.path), "supernet": None}
    if supernet is not None:
        checkpoint = WeightsFile.read(supernet, "supernet")
        if checkpoint.space != header.space:
            raise NasError(f"{supernet}: supernet of space '{checkpoint.space}', the export is of '{header.space}'")
        weights = {"subnet": None, "supernet": str(checkpoint.path)}
    if batch_size is not None and batch_size < 1:
        raise NasError(f"--batch-size {batch_size}: give at least 1 image per device")
    pyramid = task_pyramid(spec, header.space, header.space_options, out_indices)
    template_path = Path(template) if template else CONFIGS / spec.template
    if not template_path.is_file():
        raise NasError(f"{template_path}: config template not found")
    cfg = Config.fromfile(str(template_path))
    out = Path(out)
    overrides = model_overrides(spec, pyramid)
    # the export's options replace the template's (a merge would add the template space's keys)
    options = {"_delete_": True, **header.space_options}
    overrides["backbone"].update({"space": header.space, "space_options": options, "arch": header.arch, **weights})
    cfg.merge_from_dict({"model": overrides, **data_overrides(spec, str(data_root))})
    if input_size is not None:
        apply_input_size(cfg, spec, input_size)
    if batch_size is not None:
        cfg.train_dataloader.batch_size = batch_size
    cfg.work_dir = str(Path(work_dir).resolve()) if work_dir else str(Path("work_dirs") / out.stem)
    size, batch = configured_input(cfg, spec)
    written = Written(out, spec, header.space, header.arch, pyramid, size, batch)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"Written by `nas finetune` for {header.space} architecture {header.arch} ({task}).", *written.describe()[1:],
             f"Training input {size[0]}x{size[1]} (WxH), {batch} images per device.", f"Run: python -m nas_downstream.train {out}"]
    out.write_text("".join(f"# {line}\n" for line in lines) + cfg.pretty_text)
    return written
